"""The callback end to end: train small models, read the event files back, check what was written."""

from __future__ import annotations

import functools
import re

import keras
import numpy as np
import pytest
from helpers import models
from helpers.models import fit_run, small_cnn
from helpers.plugin import multiplexer_for
from tensorboard.util import tensor_util

from tb_featuremaps import FeatureMapsCallback, reader, render
from tb_featuremaps.format import metadata
from tb_featuremaps.writer.probes import default_digits

fit = functools.partial(fit_run, samples=100, batch_size=50)  # trains with a new callback on 100 digits; returns its run


def check_layer(log: reader.LayerLog, filters: int, tile: tuple, steps: list) -> None:
    """The promised series: steps, one PNG per probe of the size the metadata promises, stats shape."""
    layout = log.info.layout
    assert log.steps.tolist() == steps
    assert log.info.filters_shown == filters
    assert (layout.tile_height, layout.tile_width) == tile
    assert layout.rows * layout.cols >= filters > (layout.rows - 1) * layout.cols
    for index in range(len(steps)):
        assert len(log.pngs[index]) == len(log.info.probe_labels)
        image = log.grid(index, probe=len(log.info.probe_labels) - 1)
        assert image.shape[:2] == (layout.height, layout.width)
        assert log.tiles(index).shape == (filters, *tile)
    assert log.stats.shape == (len(steps), len(log.info.probe_labels), filters, len(metadata.STATS_FIELDS))


def test_trained_seed_model_logs_every_epoch(trained_logdir):
    run = reader.load(trained_logdir)["feature_maps"]
    assert list(run.layers) == ["conv1", "pool1", "conv2", "pool2"]
    steps = list(range(13))
    check_layer(run.layers["conv1"], 8, (28, 28), steps)
    check_layer(run.layers["pool1"], 8, (14, 14), steps)
    check_layer(run.layers["conv2"], 16, (14, 14), steps)
    check_layer(run.layers["pool2"], 16, (7, 7), steps)
    assert run.layers["conv1"].info.layer_class == "Conv2D"
    assert run.layers["conv1"].info.output_shape == [None, 28, 28, 8]
    assert run.layers["conv1"].info.step_unit == "epoch"
    # The shipped probes: ten digits 0..9, drawn as 28x28 pictures.
    assert run.probe_labels == [str(d) for d in range(10)]
    assert [image.shape for image in run.probe_images] == [(28, 28)] * 10
    assert all(image.max() == 255 and image.min() == 0 for image in run.probe_images)


def test_trained_conv_grid_shows_structure_and_changes(trained_logdir):
    conv = reader.load(trained_logdir)["feature_maps"].layers["conv1"]
    tiles = conv.tiles(-1, probe=3)
    live = [t for t in tiles if t.max() > 0]
    assert live, "every filter of the trained first layer is blank"
    assert all(len(np.unique(t)) > 10 for t in live), "a live filter's tile is flat"
    assert not np.array_equal(conv.tiles(0, probe=3), tiles), "the filters did not change over training"
    # Each probe gets its own grid.
    assert not np.array_equal(conv.tiles(-1, probe=0), conv.tiles(-1, probe=1))
    # The weights of the first layer are its 5x5 kernels.
    kernels = reader.load(trained_logdir)["feature_maps"].weights["conv1"]
    assert kernels.tiles(-1).shape == (8, 5, 5)
    assert not np.array_equal(kernels.tiles(0), kernels.tiles(-1))


def test_stats_match_activations_computed_directly(tmp_path):
    model = small_cnn()
    run = fit(model, tmp_path, epochs=1)
    assert len(run.probe_images) == 10

    digits, _ = default_digits()
    inputs = digits.reshape(10, 28, 28, 1).astype("float32") / 255.0
    for name in ("conv1", "pool2"):
        values = keras.ops.convert_to_numpy(keras.Model(model.inputs, model.get_layer(name).output)([inputs]))
        stats = run.layers[name].stats[-1]
        np.testing.assert_allclose(stats[..., 0], values.min(axis=(1, 2)), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(stats[..., 1], values.max(axis=(1, 2)), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(stats[..., 2], values.mean(axis=(1, 2)), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(stats[..., 3], values.std(axis=(1, 2)), rtol=1e-3, atol=1e-5)
        assert (stats[..., 4] == 0).all()
        # A tile is the filter's map scaled to 0..255 by its own min and max.
        tile = run.layers[name].tiles(-1, probe=4)[0].astype(float)
        low, high = values[4, ..., 0].min(), values[4, ..., 0].max()
        if high > low:
            np.testing.assert_allclose(tile, (values[4, ..., 0] - low) / (high - low) * 255, atol=1.0)


def test_images_dashboard_copies_hold_the_same_grids(trained_logdir):
    multiplexer = multiplexer_for(trained_logdir, keep_every=("images", "scalars"))
    image_tags = multiplexer.PluginRunToTagToContent("images")["feature_maps"]
    assert set(image_tags) == {f"feature_maps/{kind}/{layer}" for kind in ("activations",) for layer in ("conv1", "pool1", "conv2", "pool2")} | {
        "feature_maps/weights/conv1",
        "feature_maps/weights/conv2",
    }
    ours = reader.load(trained_logdir)["feature_maps"].layers["conv2"]
    copies = multiplexer.Tensors("feature_maps", "feature_maps/activations/conv2")
    assert [event.step for event in copies] == ours.steps.tolist()
    last = tensor_util.make_ndarray(copies[-1].tensor_proto)
    assert list(last[2:]) == ours.pngs[-1][:1]  # by default (write_images="first") the first probe's grid only
    assert (int(last[0]), int(last[1])) == (ours.info.layout.width, ours.info.layout.height)
    # Filter-health scalars for the Scalars dashboard.
    scalar_tags = multiplexer.PluginRunToTagToContent("scalars")["feature_maps"]
    assert "feature_maps/dead_filters/conv1" in scalar_tags


def test_images_copy_can_be_turned_off(tmp_path):
    fit(small_cnn(), tmp_path, epochs=1, write_images=False, write_weights=False)
    multiplexer = multiplexer_for(tmp_path, keep_every=())
    assert multiplexer.PluginRunToTagToContent("images") == {}
    assert all(not tag.startswith("weights/") for tag in multiplexer.PluginRunToTagToContent("feature_maps")["feature_maps"])


def test_sequential_without_input_is_traced_after_build(tmp_path):
    model = keras.Sequential(
        [keras.layers.Conv2D(4, 3, name="c"), keras.layers.MaxPooling2D(name="p"), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    run = fit(model, tmp_path, epochs=2)
    assert list(run.layers) == ["c", "p"]
    check_layer(run.layers["c"], 4, (26, 26), [0, 1, 2])


def test_functional_and_nested_models(tmp_path):
    inner_in = keras.Input((14, 14, 4))
    inner = keras.Model(inner_in, keras.layers.Conv2D(6, 3, name="conv")(inner_in), name="block")
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = inner(x)
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    run = fit(model, tmp_path, epochs=1)
    # Layers in model order; the nested layer's tag is prefixed by its model, so both "conv" stay unique.
    assert list(run.layers) == ["conv", "pool", "block/conv"]
    check_layer(run.layers["block/conv"], 6, (12, 12), [0, 1])
    # The nested layer's stats equal a direct computation through both models.
    digits, _ = default_digits()
    pooled = keras.Model(model.inputs[0], model.get_layer("pool").output)(digits.reshape(10, 28, 28, 1) / 255.0)
    direct = keras.ops.convert_to_numpy(inner(pooled))
    np.testing.assert_allclose(run.layers["block/conv"].stats[-1, ..., 1], direct.max(axis=(1, 2)), rtol=1e-4, atol=1e-5)


def test_subclassed_model_gets_a_clear_error(tmp_path):
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(4, 3)
            self.head = keras.layers.Dense(10)

        def call(self, x):
            return self.head(keras.ops.mean(self.conv(x), axis=(1, 2)))

    model = Net()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match="subclassed.*Functional"):
        fit(model, tmp_path, epochs=1)


def test_rgb_input_with_custom_probes_and_labels(tmp_path):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(5, 3, name="rgb_conv")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    probes = rng.random((3, 16, 16, 3), dtype=np.float32)
    callback = FeatureMapsCallback(str(tmp_path), probes=probes, labels=["cat", "dog", "car"])
    models.fit(model, [callback], rng.random((20, 16, 16, 3)), rng.integers(0, 2, 20))
    run = reader.load(str(tmp_path))["feature_maps"]
    check_layer(run.layers["rgb_conv"], 5, (14, 14), [0, 1])
    assert run.probe_labels == ["cat", "dog", "car"]
    assert [image.shape for image in run.probe_images] == [(16, 16, 3)] * 3
    # The RGB kernels are shown averaged over their three input channels.
    kernel = model.get_layer("rgb_conv").kernel.numpy().mean(axis=2)
    tile = run.weights["rgb_conv"].tiles(-1)[2].astype(float)
    expected = (kernel[..., 2] - kernel[..., 2].min()) / np.ptp(kernel[..., 2]) * 255
    np.testing.assert_allclose(tile, expected, atol=1.0)


def test_probe_shape_mismatch_names_the_expected_shape(tmp_path):
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    with pytest.raises(ValueError, match=re.escape("(None, 32, 32, 3)")):
        models.fit(model, [FeatureMapsCallback(str(tmp_path))], np.zeros((4, 32, 32, 3)), np.zeros((4, 2)))


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        (["conv2"], ["conv2"]),
        ([keras.layers.MaxPooling2D], ["pool1", "pool2"]),
        ([re.compile("conv.")], ["conv1", "conv2"]),
        (["logits"], ["logits"]),
    ],
)
def test_layer_selection(tmp_path, layers, expected):
    run = fit(small_cnn(), tmp_path, epochs=1, layers=layers)
    assert list(run.layers) == expected
    if expected == ["logits"]:  # a dense layer: one 1x1 tile per unit
        check_layer(run.layers["logits"], 10, (1, 1), [0, 1])


def test_layer_objects_select_too(tmp_path):
    model = small_cnn()
    run = fit(model, tmp_path, epochs=1, layers=[model.get_layer("pool1")])
    assert list(run.layers) == ["pool1"]


def test_unknown_layer_lists_the_available_ones(tmp_path):
    with pytest.raises(ValueError, match="'convv1'.*Available layers: conv1, pool1, conv2, pool2, flatten.*logits"):
        fit(small_cnn(), tmp_path, epochs=1, layers=["convv1"])


def test_every_n_batches(tmp_path):
    run = fit(small_cnn(), tmp_path, epochs=2, samples=200, update_freq=3)  # 4 batches per epoch, 8 in all
    conv = run.layers["conv1"]
    assert conv.info.step_unit == "batch"
    assert conv.steps.tolist() == [0, 3, 6, 8]  # every 3rd batch across epochs, and the final state


def test_every_n_epochs_keeps_the_final_state(tmp_path):
    run = fit(small_cnn(), tmp_path, epochs=5, epoch_freq=2)
    assert run.layers["pool2"].steps.tolist() == [0, 2, 4, 5]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"update_freq": 0}, "update_freq"),
        ({"update_freq": "sometimes"}, "update_freq"),
        ({"epoch_freq": 0}, "epoch_freq"),
        ({"max_filters": -1}, "max_filters"),
        ({"run_name": "../up"}, "run_name"),
        ({"probes": np.zeros((0, 28, 28, 1))}, "empty"),
        ({"probes": np.zeros((2, 28, 28, 1)), "labels": ["a"]}, "1 labels for 2 probes"),
    ],
)
def test_bad_arguments_are_rejected_up_front(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        FeatureMapsCallback(str(tmp_path), **arguments)


def test_grid_layout_is_near_square():
    layout = metadata.GridLayout.for_tiles(32, 24, 24)
    assert (layout.rows, layout.cols) == (6, 6)
    assert (metadata.GridLayout.for_tiles(64, 7, 7).rows, metadata.GridLayout.for_tiles(64, 7, 7).cols) == (8, 8)
    wide = metadata.GridLayout.for_tiles(16, 1, 100)  # 1-D maps stack as rows
    assert wide.cols == 1 and wide.rows == 16


def test_nonfinite_values_are_marked_and_counted():
    maps = np.ones((2, 4, 4, 3), np.float32)
    maps[0, 1, 1, 0] = np.nan
    maps[1, ..., 2] = np.inf
    drawn = render.draw(maps)
    stats = drawn.stats
    assert stats[0, 0, 4] == pytest.approx(1 / 16)
    assert stats[1, 2, 4] == 1.0 and np.isnan(stats[1, 2, 0])
    layout = drawn.layout()
    image = render.decode_png(render.to_pngs(drawn, layout)[0])
    assert image.shape == (layout.height, layout.width, 2)
    assert image[1, 1, 1] == 0 and image[0, 0, 1] == 255


@pytest.mark.parametrize(
    "change",
    [{"rows": 0}, {"tile_height": 100_000}, {"filters_shown": 99}, {"filters_shown": 1, "rows": 3}, {"gutter": -1}, {"probe_labels": "0"}],
)
def test_impossible_layouts_are_rejected(change):
    layout = metadata.GridLayout.for_tiles(8, 5, 5)
    info = metadata.LayerInfo("activations", "c", "Conv2D", 0, [None, 5, 5, 8], layout, 8, 8, ["a"], "epoch")
    assert metadata.LayerInfo.from_json(info.to_json()) == info
    with pytest.raises(metadata.FormatError, match="impossible grid layout"):
        metadata.LayerInfo.from_json({**info.to_json(), **change})
