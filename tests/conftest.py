"""Shared fixtures: a small model trained with the real callback on real MNIST digits.

The helpers the tests share are in ``tests/helpers``; test modules import from there.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

# Imported here for tests that still import them from conftest (tests/helpers holds them now).
from helpers.models import channels_first_fit, mnist_digits, small_cnn, train_logdir  # noqa: F401
from helpers.processes import run_on_backend  # noqa: F401


def write_layer_step(
    writer, step: int, layer: str, index: int, maps: np.ndarray, labels: list, layer_class: str = "Conv2D", step_unit: str = "epoch"
):
    """Writes ``maps`` ``[probes, h, w, filters]`` as ``layer``'s grids and stats at ``step`` (no Images copies)."""
    from tb_featuremaps import render
    from tb_featuremaps.format import metadata

    drawn = render.draw(maps, max_filters=maps.shape[-1], max_tile_size=max(maps.shape[1:3]))
    _, height, width, filters = maps.shape
    info = metadata.LayerInfo(
        "activations",
        layer,
        layer_class,
        index,
        [None, height, width, filters],
        drawn.layout(),
        filters,
        filters,
        labels,
        step_unit,
        normalization=drawn.normalization,
    )
    writer.write_layer(step, info, render.to_pngs(drawn, info.layout), stats=drawn.stats, images_copy=False)


@pytest.fixture(scope="session")
def trained_logdir(tmp_path_factory) -> str:
    """A logdir with run ``feature_maps``: 13 steps (0..12) of conv1/pool1/conv2/pool2."""
    return train_logdir(tmp_path_factory.mktemp("logs"), epochs=12)
