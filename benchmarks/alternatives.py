"""The other ways to see a network's filters in TensorBoard, as callbacks to compare against."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence

import keras
import matplotlib
import numpy as np

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 (after choosing the backend)
import tensorflow as tf  # noqa: E402


def keras_tensorboard(log_dir: str) -> keras.callbacks.TensorBoard:
    """Keras' own callback with weight histograms and kernel images every epoch."""
    return keras.callbacks.TensorBoard(os.path.join(log_dir, "keras"), histogram_freq=1, write_images=True)


class MatplotlibFeatureMaps(keras.callbacks.Callback):
    """The tutorial and blog-post way: ``predict`` on the probes, one matplotlib figure per
    layer and probe with a subplot per filter, turned into a PNG image summary.

    It draws the same filters of the same layers as :class:`FeatureMapsCallback`
    (activations only: no kernels, statistics or copies).
    """

    def __init__(self, log_dir: str, probes: np.ndarray, layer_names: Sequence[str], max_filters: int = 128):
        super().__init__()
        self.probes, self.layer_names, self.max_filters = probes, list(layer_names), max_filters
        self._writer = tf.summary.create_file_writer(os.path.join(log_dir, "matplotlib"))
        self._extractor = None

    def on_train_begin(self, logs=None):
        outputs = [self.model.get_layer(name).output for name in self.layer_names]
        self._extractor = keras.Model(self.model.inputs, outputs)

    def on_epoch_end(self, epoch, logs=None):
        outputs = self._extractor.predict(self.probes, verbose=0)
        with self._writer.as_default():
            for name, maps in zip(self.layer_names, outputs):
                images = tf.stack([figure_image(probe_maps[..., : self.max_filters]) for probe_maps in maps])
                tf.summary.image(f"feature_maps/{name}", images, step=epoch, max_outputs=len(images))
        self._writer.flush()


def figure_image(maps: np.ndarray) -> tf.Tensor:
    """One probe's ``[H, W, F]`` maps as a figure of F gray subplots, rendered to an RGBA image."""
    filters = maps.shape[-1]
    cols = math.ceil(math.sqrt(filters))
    rows = math.ceil(filters / cols)
    figure, axes = plt.subplots(rows, cols, figsize=(cols, rows))
    for index, axis in enumerate(np.ravel(axes)):
        axis.axis("off")
        if index < filters:
            axis.imshow(maps[..., index], cmap="gray")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return tf.image.decode_png(buffer.getvalue(), channels=4)
