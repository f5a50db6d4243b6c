"""Deep networks log, by default, their first convolution and the last layer of each resolution stage."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from tb_featuremaps import FeatureMapsLogger, reader
from tb_featuremaps.keras.extractor import DEEP_NETWORK_LAYERS

SIDE = 64

EXPECTED = {
    "ResNet50": ["conv1_conv", "conv2_block3_3_conv", "conv3_block4_3_conv", "conv4_block6_3_conv", "conv5_block3_3_conv"],
    "MobileNetV2": ["Conv1", "block_1_expand", "block_3_expand", "block_6_expand", "block_13_expand", "Conv_1"],
    # The squeeze-and-excitation gates (1x1 maps between larger ones) end no stage.
    "EfficientNetB0": ["stem_conv", "block2a_expand_conv", "block3a_expand_conv", "block4a_expand_conv", "block6a_expand_conv", "top_conv"],
}


@pytest.fixture(scope="module", params=sorted(EXPECTED))
def application(request):
    return request.param, getattr(keras.applications, request.param)(weights=None, input_shape=(SIDE, SIDE, 3))


def _paths(model, tmp_path, **args) -> tuple[list[str], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = FeatureMapsLogger(model, tmp_path, np.zeros((1, SIDE, SIDE, 3), np.float32), **args).layer_paths
    return paths, [str(w.message) for w in caught]


def test_a_deep_network_logs_its_first_convolution_and_each_stage_end(application, tmp_path):
    name, model = application
    paths, messages = _paths(model, tmp_path)
    assert paths == EXPECTED[name]
    every, _ = _paths(model, tmp_path, layers="all")
    assert len(every) > DEEP_NETWORK_LAYERS and set(paths) < set(every)
    said = [m for m in messages if "layers='all'" in m]
    assert len(said) == 1 and f"the model has {len(every)} convolution and pooling layers" in said[0] and ", ".join(paths) in said[0]
    spatial = [model.get_layer(path).output.shape[1:3] for path in paths[1:]]
    assert all(before != after for before, after in zip(spatial, spatial[1:]))  # one layer per resolution


def test_layers_still_chooses_more(application, tmp_path):
    name, model = application
    chosen = [EXPECTED[name][0], keras.layers.DepthwiseConv2D if name != "ResNet50" else keras.layers.MaxPooling2D]
    paths, messages = _paths(model, tmp_path, layers=chosen)
    assert EXPECTED[name][0] in paths and len(paths) > 1 and not any("layers='all'" in m for m in messages)


def test_the_default_layers_are_logged_and_read_back(tmp_path):
    model = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger = FeatureMapsLogger(model, tmp_path, np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32))
        assert logger.log(0)
        logger.close()
    run = next(iter(reader.load(str(tmp_path)).values()))
    assert list(run.layers) == ["Conv1", "block_1_expand", "block_3_expand", "block_6_expand", "block_13_expand", "Conv_1"]
    assert run.layers["Conv_1"].info.output_shape == [None, 1, 1, 1280]  # a last stage of 1x1 maps is a stage
