"""The callback on every kind of model it supports, and a clear error for the rest."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
from helpers.models import channels_first_fit, compile_classifier, fit, fit_run, mnist_digits, small_cnn
from helpers.processes import run_on_backend, skip_without_backend

from tb_featuremaps import FeatureMapsCallback, reader

layers = keras.layers
_fit = functools.partial(fit_run, alone=True)  # trains with a new callback; returns the run, the log_dir's only one


def _messages(recwarn) -> list[str]:
    return [str(w.message) for w in recwarn if "FeatureMapsCallback" in str(w.message)]


def test_sequential_without_input_is_built_from_the_probes(tmp_path):
    x = np.random.default_rng(0).random((64, 12, 12, 3), dtype=np.float32)
    model = compile_classifier(keras.Sequential([layers.Conv2D(4, 3, name="conv"), layers.Flatten(), layers.Dense(10)]))
    run = _fit(model, tmp_path, x, np.arange(64) % 10, epochs=2, probes=x[:2])
    assert run.layers["conv"].steps.tolist() == [0, 1, 2]  # the initial state too
    assert run.layers["conv"].info.output_shape == [None, 10, 10, 4]
    assert [image.shape for image in run.probe_images] == [(12, 12, 3)] * 2


@pytest.mark.parametrize("form", ["list", "dict"])
def test_functional_model_with_two_inputs(tmp_path, form):
    x, y = mnist_digits(64)
    extra = np.random.default_rng(0).random((64, 8), dtype=np.float32)
    image_in, extra_in = keras.Input((28, 28, 1), name="image"), keras.Input((8,), name="extra")
    features = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3, name="conv")(image_in))
    model = compile_classifier(keras.Model([image_in, extra_in], layers.Dense(10)(layers.Concatenate()([features, extra_in]))))
    probes = [x[:3], extra[:3]] if form == "list" else {"extra": extra[:3], "image": x[:3]}  # any key order
    run = _fit(model, tmp_path, [x, extra], y, probes=probes)
    assert run.layers["conv"].steps.tolist() == [0, 1]
    assert run.layers["conv"].info.probe_labels == ["0", "1", "2"]
    assert [image.shape for image in run.probe_images] == [(28, 28)] * 3  # pictures of the first input


def test_layers_inside_a_nested_mobilenet_backbone(tmp_path, recwarn):
    backbone = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), include_top=False, alpha=0.35)
    inputs = keras.Input((32, 32, 3))
    model = compile_classifier(keras.Model(inputs, layers.Dense(10)(layers.GlobalAveragePooling2D()(backbone(inputs)))))
    x = np.random.default_rng(0).random((16, 32, 32, 3), dtype=np.float32)
    run = _fit(model, tmp_path, x, np.arange(16) % 10, probes=x[:2], layers="all")
    name = backbone.name  # mobilenetv2_0.35_32
    assert list(run.layers)[:2] == [f"{name}/Conv1", f"{name}/expanded_conv_depthwise"]
    assert all(path.startswith(f"{name}/") for path in run.layers)
    assert run.layers[f"{name}/Conv1"].info.layout.tile_height == 16
    assert run.layers[f"{name}/Conv_1"].info.filters_total == 1280
    assert run.layers[f"{name}/Conv_1"].info.filters_shown == 128
    assert run.layers[f"{name}/block_1_expand"].steps.tolist() == [0, 1]
    assert np.isfinite(run.layers[f"{name}/block_1_expand"].stats).all()
    assert len([m for m in _messages(recwarn) if "raise max_filters=" in m]) == 1


def test_subclassed_model_is_refused_before_training(tmp_path):
    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv, self.flatten, self.dense = layers.Conv2D(4, 3), layers.Flatten(), layers.Dense(10)

        def call(self, inputs):
            return self.dense(self.flatten(self.conv(inputs)))

    x, y = mnist_digits(32)
    model = compile_classifier(Classifier())
    with pytest.raises(ValueError, match=r"Classifier model: it has no symbolic inputs \(a subclassed model\).*Functional API"):
        fit(model, [FeatureMapsCallback(str(tmp_path))], x, y)
    assert int(model.optimizer.iterations) == 0


@pytest.fixture
def mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    yield
    keras.mixed_precision.set_global_policy(previous)


def test_mixed_precision(tmp_path, mixed_precision):
    x, y = mnist_digits(64)
    model = small_cnn()
    assert model.get_layer("conv1").compute_dtype == "float16"
    run = _fit(model, tmp_path, x, y, probes=x[:2])
    assert list(run.layers) == ["conv1", "pool1", "conv2", "pool2"]
    for layer in run.layers.values():
        assert np.isfinite(layer.stats).all()
        assert layer.stats.dtype == np.float32
        assert layer.tiles(-1).std() > 0
    assert run.weights["conv1"].tiles(0).shape == (8, 5, 5)


def _tensorflow_lacks_channels_first() -> str:
    """Why this machine's TensorFlow cannot train channels_first convolutions on the CPU ("" if it can)."""
    import tensorflow as tf

    try:
        kernel = tf.Variable(tf.ones((3, 3, 1, 1)))
        with tf.GradientTape() as tape:
            out = tf.nn.conv2d(tf.ones((1, 1, 8, 8)), kernel, 1, "VALID", data_format="NCHW")
        tape.gradient(out, kernel)
    except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError) as error:
        return f"TensorFlow's CPU kernels on this processor do not train channels_first (NCHW) convolutions: {error.message.splitlines()[0]}"
    return ""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_channels_first(tmp_path, backend):
    if backend == "tensorflow":
        reason = _tensorflow_lacks_channels_first()
        if reason:
            pytest.skip(reason)
        channels_first_fit(tmp_path / "logs")
    else:  # JAX trains channels_first on every processor
        skip_without_backend("jax")
        run_on_backend(
            "jax",
            "import sys; from helpers.models import channels_first_fit; channels_first_fit(sys.argv[1])",
            str(tmp_path / "logs"),
            scratch=tmp_path,
        )
    run = reader.load(str(tmp_path / "logs"))["feature_maps"]
    conv = run.layers["conv"]
    assert conv.info.output_shape == [None, 4, 26, 26]
    assert (conv.info.filters_shown, conv.info.layout.tile_height, conv.info.layout.tile_width) == (4, 26, 26)
    assert conv.tiles(-1).std() > 0
    assert run.layers["pool"].info.layout.tile_height == 13
    assert [image.shape for image in run.probe_images] == [(28, 28)] * 2  # not a 1x28 strip of the channel axis


@pytest.mark.parametrize(
    ("layer", "input_shape", "tile", "filters", "kernel_tiles"),
    [
        (layers.Conv1D(6, 3, name="layer"), (20, 2), (8, 18), 6, (6, 8, 3)),  # 1-D maps drawn as 8-row strips
        (layers.Conv3D(3, 3, name="layer"), (6, 10, 10, 1), (8, 8), 3, None),  # middle depth slice; no 3-D kernel grid
        (layers.DepthwiseConv2D(3, depth_multiplier=2, name="layer"), (12, 12, 3), (10, 10), 6, (6, 3, 3)),
        (layers.SeparableConv2D(5, 3, name="layer"), (12, 12, 3), (10, 10), 5, (3, 3, 3)),
        (layers.Conv2DTranspose(4, 3, strides=2, name="layer"), (6, 6, 2), (13, 13), 4, (4, 3, 3)),
    ],
    ids=["Conv1D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose"],
)
def test_convolution_kinds(tmp_path, layer, input_shape, tile, filters, kernel_tiles):
    x = np.random.default_rng(0).random((32, *input_shape), dtype=np.float32)
    model = compile_classifier(keras.Sequential([keras.Input(input_shape), layer, layers.Flatten(), layers.Dense(10)]))
    run = _fit(model, tmp_path, x, np.arange(32) % 10, probes=x[:2])
    logged = run.layers["layer"]
    assert (logged.info.layout.tile_height, logged.info.layout.tile_width) == tile
    assert logged.info.filters_shown == filters
    assert logged.tiles(-1, probe=1).shape == (filters, *tile)
    assert logged.stats.shape == (2, 2, filters, 5)
    if isinstance(layer, layers.Conv3D):  # output [4, 8, 8, 3]: the depth axis is the one sliced
        assert logged.info.reduction == "middle slice 2 of depth 4"
    if kernel_tiles is not None:
        assert run.weights["layer"].tiles(-1).shape == kernel_tiles


def test_thousands_of_channels_are_capped_and_warned_once(tmp_path, recwarn):
    x = np.random.default_rng(0).random((32, 4, 4, 1), dtype=np.float32)
    model = compile_classifier(keras.Sequential([keras.Input((4, 4, 1)), layers.Conv2D(2000, 1, name="wide"), layers.Flatten(), layers.Dense(10)]))
    callback = FeatureMapsCallback(str(tmp_path), probes=x[:2], max_filters=100)
    for _ in range(2):
        fit(model, [callback], x, np.arange(32) % 10)
    wide = reader.load(str(tmp_path))["feature_maps"].layers["wide"]
    assert (wide.info.filters_shown, wide.info.filters_total) == (100, 2000)
    assert wide.stats.shape == (3, 2, 100, 5)
    assert _messages(recwarn) == ["FeatureMapsCallback draws the first 100 filters of: wide (2000); raise max_filters= to draw more."]


def test_one_by_one_outputs(tmp_path):
    x = np.random.default_rng(0).random((32, 4, 4, 1), dtype=np.float32)
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), layers.Conv2D(8, 4, name="conv"), layers.GlobalMaxPooling2D(name="gmp"), layers.Dense(10, name="dense")]
    )
    run = _fit(compile_classifier(model), tmp_path, x, np.arange(32) % 10, probes=x[:2], layers=["conv", "gmp", "dense"])
    for path, filters in (("conv", 8), ("gmp", 8), ("dense", 10)):
        logged = run.layers[path]
        assert logged.tiles(-1).shape == (filters, 1, 1), path
        low, high = logged.stats[-1, ..., 0], logged.stats[-1, ..., 1]
        np.testing.assert_array_equal(low, high)  # one value per filter


def _two_towers() -> keras.Model:
    """Two sub-models whose convolutions are both named ``conv``."""

    def tower(name: str) -> keras.Model:
        inputs = keras.Input((28, 28, 1))
        return keras.Model(inputs, layers.Conv2D(3, 3, name="conv")(inputs), name=name)

    inputs = keras.Input((28, 28, 1))
    merged = layers.Concatenate()([tower("left")(inputs), tower("right")(inputs)])
    return compile_classifier(keras.Model(inputs, layers.Dense(10)(layers.Flatten()(merged))))


def test_same_layer_name_in_two_sub_models(tmp_path):
    x, y = mnist_digits(32)
    first = _fit(_two_towers(), tmp_path / "a", x, y, probes=x[:2])
    again = _fit(_two_towers(), tmp_path / "b", x, y, probes=x[:2], layers=["conv"])  # the short name selects both
    assert list(first.layers) == list(again.layers) == ["left/conv", "right/conv"]
    assert not np.array_equal(first.layers["left/conv"].stats, first.layers["right/conv"].stats)
