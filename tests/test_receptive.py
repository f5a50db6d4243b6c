"""Receptive fields from the Keras graph, checked against the pixels each output unit actually depends on."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from tb_featuremaps.format.metadata import ReceptiveField
from tb_featuremaps.keras.extractor import Extractor, select_layers, walk
from tb_featuremaps.keras.receptive import receptive_field
from training.model import build_model


def _fields(model: keras.Model) -> dict:
    return {path: receptive_field(model, layer, chain) for path, layer, chain in walk(model)}


def _impulse_supports(model: keras.Model, paths: list) -> dict:
    """For each layer path, ``[input pixels, *output spatial]``: whether output channel 0 depends on each input pixel.

    The model must be linear with positive weights, so that nothing cancels: an
    impulse at a pixel reaches exactly the units whose field holds it.
    """
    spatial = tuple(model.inputs[0].shape[1:-1])
    pixels = int(np.prod(spatial))
    impulses = np.eye(pixels, dtype=np.float32).reshape(pixels, *spatial, 1)
    outputs = Extractor(model, select_layers(model, paths))([impulses])
    return {path: output[..., 0] > 0 for path, output in outputs.items()}


def _check_against_impulses(model: keras.Model, paths: list, padding: tuple = ()) -> None:
    """Every output unit of every layer: the pixels it depends on span exactly its computed box, clipped to the input.

    Units of the layers in ``padding`` may be padding themselves, which depend on
    no pixel whatever their box.
    """
    spatial = tuple(model.inputs[0].shape[1:-1])
    fields = _fields(model)
    for path, support in _impulse_supports(model, paths).items():
        field = fields[path].field
        assert field is not None, (path, fields[path].reason)
        for position in np.ndindex(*support.shape[1:]):
            depends = support[(slice(None), *position)].reshape(spatial)
            corner, size = field.box(position)
            low = [max(c, 0) for c in corner]
            high = [min(c + s, n) for c, s, n in zip(corner, size, spatial)]
            hit = np.nonzero(depends)
            if not hit[0].size:
                assert path in padding or any(lo >= hi for lo, hi in zip(low, high)), f"{path} {position}: box {corner}+{size} sees no pixel"
                continue
            seen = ([int(axis.min()) for axis in hit], [int(axis.max()) + 1 for axis in hit])
            assert seen == (low, high), f"{path} unit {position}: depends on pixels {seen}, field {field} gives {(low, high)}"


def _conv(dimensions: int = 2):
    conv = keras.layers.Conv2D if dimensions == 2 else keras.layers.Conv1D

    def make(kernel, **kwargs):
        return conv(2, kernel, kernel_initializer="ones", **kwargs)

    return make


def test_the_posts_model():
    fields = _fields(build_model())
    assert fields["conv1"].field == ReceptiveField((5, 5), (1, 1), (-2, -2))
    assert fields["pool1"].field == ReceptiveField((6, 6), (2, 2), (-2, -2))
    assert fields["conv2"].field == ReceptiveField((14, 14), (2, 2), (-6, -6))
    assert fields["pool2"].field == ReceptiveField((16, 16), (4, 4), (-6, -6))
    assert all(fields[path].input_index == 0 and fields[path].reason == "" for path in ("conv1", "pool1", "conv2", "pool2"))
    assert fields["fc1"].field is None and "'flatten' (Flatten)" in fields["fc1"].reason


def test_the_posts_layout_against_impulses():
    """The post's convolutions and pooling, linear and averaging, so that every unit's support can be read."""
    conv = _conv()
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            conv(5, padding="same", name="conv1"),
            keras.layers.AveragePooling2D(2, name="pool1"),
            conv(5, padding="same", name="conv2"),
            keras.layers.AveragePooling2D(2, name="pool2"),
        ]
    )
    _check_against_impulses(model, ["conv1", "pool1", "conv2", "pool2"])
    assert _fields(model)["pool2"].field.size == (16, 16)


def _strided_dilated_merged() -> keras.Model:
    """Stride 2 with an even 'same' kernel, asymmetric padding, a nested model (dilation, 'same' pooling), a merge, a residual."""
    conv = _conv()
    inputs = keras.Input((29, 27, 1), name="image")
    x = keras.layers.ZeroPadding2D(((2, 0), (1, 1)), name="pad")(inputs)
    x = conv(4, strides=2, padding="same", name="even_same")(x)
    block_inputs = keras.Input(x.shape[1:])
    y = conv(3, dilation_rate=2, name="dilated")(block_inputs)
    y = keras.layers.AveragePooling2D(3, strides=2, padding="same", name="pool")(y)
    x = keras.Model(block_inputs, y, name="block")(x)
    tall = conv((3, 1), padding="same", name="tall")(x)
    wide = conv((1, 3), padding="same", name="wide")(x)
    x = keras.layers.Add(name="merge")([tall, wide])
    x = keras.layers.Cropping2D(((1, 0), (0, 1)), name="crop")(x)
    residual = conv(2, padding="same", name="residual")(x)
    x = keras.layers.Add(name="add")([x, residual])
    x = conv(2, name="last")(x)
    return keras.Model(inputs, x)


def test_strides_dilation_padding_nesting_and_merges_against_impulses():
    model = _strided_dilated_merged()
    paths = ["pad", "even_same", "block/dilated", "block/pool", "tall", "wide", "merge", "crop", "add", "last"]
    _check_against_impulses(model, paths, padding=("pad",))
    fields = _fields(model)
    # 31 rows and 29 columns at stride 2: 'same' pads 1 before and 2 after.
    assert fields["even_same"].field.start == (-2 - 1, -1 - 1)
    assert fields["block/dilated"].field.size == (4 + 4 * 2, 4 + 4 * 2)
    block = fields["block/pool"].field
    assert fields["merge"].field.size == tuple(size + 2 * jump for size, jump in zip(block.size, block.jump))


def test_causal_conv1d_and_pooling_give_one_axis():
    conv = _conv(1)
    model = keras.Sequential(
        [
            keras.Input((23, 1)),
            conv(2, padding="causal", name="causal"),
            conv(3, padding="causal", dilation_rate=2, name="dilated"),
            keras.layers.AveragePooling1D(2, padding="same", name="pool"),
            conv(4, strides=3, padding="same", name="strided"),
            keras.layers.ZeroPadding1D((2, 1), name="pad"),
            conv(3, name="valid"),
        ]
    )
    fields = _fields(model)
    assert fields["dilated"].field == ReceptiveField((6,), (1,), (-5,))
    _check_against_impulses(model, ["causal", "dilated", "pool", "strided", "pad", "valid"], padding=("pad",))


@pytest.mark.parametrize(
    ("blocker", "name"),
    [
        (keras.layers.UpSampling2D(2, name="up"), "'up' (UpSampling2D)"),
        (keras.layers.Reshape((4, 16, 4), name="reshape"), "'reshape' (Reshape)"),
        (keras.layers.Lambda(lambda t: t * 2, name="double"), "'double' (Lambda)"),
    ],
)
def test_layers_it_cannot_follow(blocker, name):
    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same", name="before"), blocker, keras.layers.Conv2D(4, 3, name="after")]
    )
    fields = _fields(model)
    assert fields["before"].field is not None and fields["before"].reason == ""
    assert fields["after"].field is None and name in fields["after"].reason


def test_a_branch_with_a_blocker_stops_the_merge_and_gates_are_left_out():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
    gated = keras.layers.Multiply(name="gated")([x, gate])
    upsampled = keras.layers.UpSampling2D(1, name="up")(x)
    blocked = keras.layers.Add(name="blocked")([x, upsampled])
    fields = _fields(keras.Model(inputs, [gated, blocked]))
    assert fields["gated"].field == fields["conv"].field
    assert fields["blocked"].field is None and "'up' (UpSampling2D)" in fields["blocked"].reason


def test_several_inputs_use_the_first():
    first, second = keras.Input((8, 8, 1), name="first"), keras.Input((8, 8, 1), name="second")
    x = keras.layers.Conv2D(2, 3, padding="same", name="on_first")(first)
    y = keras.layers.Conv2D(2, 5, padding="same", name="on_second")(second)
    both = keras.layers.Concatenate(name="both")([y, x])
    fields = _fields(keras.Model([first, second], both))
    assert fields["on_second"].input_index == 1 and fields["on_second"].field.size == (5, 5)
    assert fields["both"].input_index == 0 and fields["both"].field == fields["on_first"].field


def test_resnet50_every_convolution_quickly():
    model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    convolutions = [(path, layer, chain) for path, layer, chain in walk(model) if isinstance(layer, keras.layers.Conv2D)]
    began = time.perf_counter()
    results = {path: receptive_field(model, layer, chain) for path, layer, chain in convolutions}
    elapsed = time.perf_counter() - began
    assert len(results) > 50 and all(result.field is not None for result in results.values()), results
    assert elapsed < 1.0, elapsed
    assert results["conv1_conv"].field == ReceptiveField((7, 7), (2, 2), (-3, -3))
    assert results["conv5_block3_3_conv"].field.size == (483, 483)


def test_resnet50_nested_in_a_model():
    backbone = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3))
    inputs = keras.Input((70, 70, 3))
    x = keras.layers.Cropping2D(3)(inputs)
    model = keras.Model(inputs, backbone(x))
    fields = _fields(model)
    inner = receptive_field(backbone, backbone.get_layer("conv2_block1_2_conv"), [])
    nested = fields["resnet50/conv2_block1_2_conv"]
    assert nested.field.size == inner.field.size and nested.field.start == tuple(s + 3 for s in inner.field.start)


def test_efficientnet_convolutions_after_squeeze_excite():
    model = keras.applications.EfficientNetB0(weights=None)
    fields = _fields(model)
    projections = [path for path in fields if path.endswith("_project_conv")]
    assert projections and all(fields[path].field is not None for path in projections), [fields[p].reason for p in projections]
    # The 1x1 projection after the gate sees what the depthwise convolution saw.
    assert fields["block1a_project_conv"].field == fields["block1a_dwconv"].field
    assert fields["top_conv"].field is not None
    assert fields["block1a_se_reduce"].field is None and "block1a_se_" in fields["block1a_se_reduce"].reason


def test_channels_first_reads_the_spatial_sizes_after_the_channels():
    """Only the graph is built: TF CPU kernels do not run channels_first convolutions on all processors."""
    inputs = keras.Input((3, 29, 28))
    x = keras.layers.Conv2D(2, 3, strides=2, padding="same", data_format="channels_first", name="conv")(inputs)
    gate = keras.layers.GlobalAveragePooling2D(data_format="channels_first", keepdims=True)(x)
    gated = keras.layers.Multiply(name="gated")([x, gate])
    fields = _fields(keras.Model(inputs, gated))
    # 'same' at stride 2 pads 29 rows by 1 before, 28 columns by 0.
    assert fields["conv"].field == ReceptiveField((3, 3), (2, 2), (-1, 0))
    assert fields["gated"].field == fields["conv"].field


def test_three_dimensional_and_unknown_sizes_are_refused():
    inputs = keras.Input((8, 8, 8, 1))
    fields = _fields(keras.Model(inputs, keras.layers.Conv3D(2, 3, name="volume")(inputs)))
    assert fields["volume"].field is None and "'volume' (Conv3D)" in fields["volume"].reason
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", name="unit_stride")(inputs)
    x = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="strided")(x)
    fields = _fields(keras.Model(inputs, x))
    assert fields["unit_stride"].field == ReceptiveField((3, 3), (1, 1), (-1, -1))
    assert fields["strided"].field is None and "'strided' (Conv2D)" in fields["strided"].reason
