"""Real networks at 224 px with default arguments: bytes per step against ``max_step_bytes``, and the time it costs."""

from __future__ import annotations

import glob
import os
import statistics
import time
from collections.abc import Sequence

import keras
import numpy as np
from tensorboard.backend.event_processing import event_file_loader

from tb_featuremaps import FeatureMapsLogger, reader
from tb_featuremaps.format import metadata

from .common import elapsed_ms

NETWORKS = ("ResNet50", "MobileNetV2", "EfficientNetB0", "ConvNeXtTiny")
SIDE = 224


def step_bytes(run_dir: str) -> dict[int, int]:
    """Step → the serialized bytes of its layers' events (not the run's probe and pool pictures), as the budget counts them."""
    sizes: dict[int, int] = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
        for event in event_file_loader.EventFileLoader(path).Load():
            tags = {value.tag for value in event.summary.value}
            if tags and not tags & {metadata.PROBES_TAG, metadata.POOL_TAG}:
                sizes[event.step] = sizes.get(event.step, 0) + event.ByteSize()
    return sizes


def pictures(count: int, seed: int) -> np.ndarray:
    """RGB pictures with structure (noise blurred over 8-pixel blocks, then smoothed), in [0, 1]."""
    coarse = np.random.default_rng(seed).random((count, SIDE // 8, SIDE // 8, 3), dtype=np.float32)
    return np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)


def budget_cost(log_dir: str, networks: Sequence[str], pools: Sequence[int], events: int, probes: int = 10) -> dict:
    """Per network and pool size (0: none), default arguments: each step's bytes, the training thread against the
    forward floor (probes and pool), the whole event against the thread, the largest strongest-inputs stage."""
    results = {}
    for name in networks:
        keras.utils.set_random_seed(0)
        model = getattr(keras.applications, name)(weights=None, input_shape=(SIDE, SIDE, 3))
        for pool_size in pools:
            results[f"{name}, pool {pool_size}" if pool_size else f"{name}, no pool"] = _one(log_dir, name, model, probes, pool_size, events)
    return {"side": SIDE, "probes": probes, "events": events, "cases": results}


def _one(log_dir: str, name: str, model: keras.Model, probes: int, pool_size: int, events: int) -> dict:
    stages: dict[str, list[float]] = {}

    def timer(stage: str, seconds: float) -> None:
        stages.setdefault(stage, []).append(seconds * 1000.0)

    pool = pictures(pool_size, 1) if pool_size else None
    logger = FeatureMapsLogger(model, log_dir, pictures(probes, 0), run_name=f"{name}_{pool_size}", pool=pool, timer=timer)
    first_ms = elapsed_ms(lambda: (logger.log(0), logger.writer.flush()))  # traces; the first step decides the drawing
    threads, floors, wholes, strongest = [], [], [], []
    for step in range(1, events + 1):
        stages.clear()
        started = time.perf_counter()
        logger.log(step)
        threads.append((time.perf_counter() - started) * 1000.0)
        wholes.append(threads[-1] + elapsed_ms(logger.writer.flush))
        floors.append(sum(stages.get("forward", [])))
        strongest.append(max(stages.get("strongest", [0.0])))
    logger.close()
    sizes = step_bytes(logger.writer.run_dir)
    run = reader.load(log_dir, run=os.path.basename(logger.writer.run_dir))[os.path.basename(logger.writer.run_dir)]
    run_infos = [series.info for series in [*run.layers.values(), *run.strongest.values()]]
    return {
        "layers": len(logger.layer_paths),
        "max_step_bytes": logger.writer.max_step_bytes,
        "step_bytes": [sizes[step] for step in sorted(sizes)],
        "within": max(sizes.values()) <= logger.writer.max_step_bytes,
        "reduced": sorted({f"{field}={value}" for info in run_infos for field, value in info.reduced.items()}),
        "first_step_ms": first_ms,
        "forward_ms": statistics.median(floors),
        "thread_ms": statistics.median(threads),
        "event_ms": statistics.median(wholes),
        "thread_to_forward": statistics.median(t / f for t, f in zip(threads, floors)),
        "event_to_thread": statistics.median(w / t for w, t in zip(wholes, threads)),
        "largest_strongest_ms": max(strongest),
    }
