"""What a grid shows is true: every stored gray level decodes, by the format's one rule, to the value it was drawn from."""

from __future__ import annotations

import keras
import numpy as np
from helpers.models import compile_classifier, fit_run, mnist_digits

from tb_featuremaps import reader, render

layers = keras.layers


def _decoded(layer: reader.LayerLog, index: int = -1) -> np.ndarray:
    """Every probe's tile values at step position ``index`` (``LayerLog.values``): float ``[P, F, h, w]``."""
    return np.stack([layer.values(index, probe) for probe in range(len(layer.info.probe_labels))])


def _outputs(model: keras.Model, names: list[str], probes: np.ndarray) -> dict[str, np.ndarray]:
    extractor = keras.Model(model.inputs, {name: model.get_layer(name).output for name in names})
    return {name: keras.ops.convert_to_numpy(value) for name, value in extractor([probes]).items()}


def test_block_averaged_tiles_decode_to_the_block_means(tmp_path):
    x = np.random.default_rng(0).random((32, 100, 100, 1), dtype=np.float32)
    model = keras.Sequential(
        [keras.Input((100, 100, 1)), layers.Conv2D(3, 3, padding="same", activation="relu", name="big"), layers.Flatten(), layers.Dense(10)]
    )
    run = fit_run(compile_classifier(model, "adam"), tmp_path, x, probes=x[:3], layers=["big"], write_weights=False)
    big = run.layers["big"]
    assert big.info.reduction == "block mean 2x2" and (big.info.layout.tile_height, big.info.layout.tile_width) == (50, 50)
    truth = _outputs(model, ["big"], x[:3])["big"]  # [3, 100, 100, 3] at the final step
    block_means = np.moveaxis(truth.reshape(3, 50, 2, 50, 2, 3).mean(axis=(2, 4)), -1, 1)  # [P, F, 50, 50]
    span = (big.stats[-1][..., 1] - big.stats[-1][..., 0])[..., None, None]
    error = np.abs(_decoded(big) - block_means)
    assert (error <= span / 255 / 2 + 1e-5).all(), float((error / span).max())  # half a gray level of the map's true range


def test_every_non_constant_tile_spans_the_whole_gray_range(trained_logdir):
    conv = reader.load(trained_logdir)["feature_maps"].layers["conv1"]  # not block-averaged: each tile holds its own min and max
    for probe in range(len(conv.info.probe_labels)):
        tiles = conv.tiles(-1, probe).astype(int)
        varying = conv.stats[-1, probe, :, 3] > 0
        assert (tiles.max(axis=(1, 2))[varying] == 255).all()  # rounded, not truncated: 254.99998 is 255
        assert (tiles.min(axis=(1, 2))[varying] == 0).all()


def test_one_by_one_maps_are_normalised_across_the_layer(tmp_path):
    x = mnist_digits(32)[0]
    inputs = keras.Input((28, 28, 1))
    features = layers.Conv2D(6, 3, activation="relu", name="conv")(inputs)
    pooled = layers.GlobalAveragePooling2D(name="gap")(features)
    squeeze = layers.Conv2D(4, 1, name="excite")(layers.Reshape((1, 1, 6))(pooled))  # a squeeze-excite 1x1 convolution
    model = keras.Model(inputs, layers.Dense(10)(layers.Flatten()(squeeze)))
    run = fit_run(compile_classifier(model, "adam"), tmp_path, x, probes=x[:3], layers=["gap", "excite"])
    truth = _outputs(model, ["gap", "excite"], x[:3])
    for name in ("gap", "excite"):
        logged = run.layers[name]
        assert logged.info.normalization == "per_layer" and (logged.info.layout.tile_height, logged.info.layout.tile_width) == (1, 1)
        values = truth[name].reshape(3, -1)  # [P, F]
        decoded = _decoded(logged)[..., 0, 0]
        assert len(np.unique(np.stack([logged.tiles(-1, p) for p in range(3)]))) > 2  # not one constant (black) pixel each
        np.testing.assert_allclose(decoded, values, atol=float(np.ptp(values)) / 255 / 2 + 1e-5)
    assert run.weights["excite"].info.normalization == "per_layer"  # its 1x1 kernels too


def test_one_dimensional_maps_are_strips_of_a_readable_height(tmp_path):
    x = np.random.default_rng(1).random((32, 100, 2), dtype=np.float32)
    model = keras.Sequential([keras.Input((100, 2)), layers.Conv1D(4, 1, name="conv1d"), layers.Flatten(), layers.Dense(10)])
    run = fit_run(compile_classifier(model, "adam"), tmp_path, x, probes=x[:3])
    strip = run.layers["conv1d"]
    assert (strip.info.layout.tile_height, strip.info.layout.tile_width) == (render.STRIP_HEIGHT, 50)  # 100 → block mean 1x2
    tiles = strip.tiles(-1, 0)
    assert (tiles == tiles[:, :1, :]).all()  # each row repeats the map
    truth = _outputs(model, ["conv1d"], x[:3])["conv1d"][0]  # [100, 4]
    expected = np.moveaxis(truth.reshape(50, 2, 4).mean(axis=1), -1, 0)  # [F, 50]
    span = (strip.stats[-1, 0, :, 1] - strip.stats[-1, 0, :, 0])[:, None]
    assert (np.abs(_decoded(strip)[0, :, 0, :] - expected) <= span / 255 / 2 + 1e-5).all()
