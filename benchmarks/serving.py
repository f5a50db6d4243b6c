"""TensorBoard side: start-up, route latency and memory of a real ``tensorboard`` serving a logdir."""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any, Optional

from tests.helpers.tensorboard import TensorBoard

from .common import directory_bytes, elapsed_ms, rss_kib, summary
from .logdirs import RUN

PLUGIN = "/data/plugin/feature_maps"
ROUTES = ("runs", "steps", "grid", "stats", "activity")
START_SECONDS = 300.0
"""Seconds TensorBoard may take to serve (it imports TensorFlow: minutes on a busy machine)."""


def start(logdir: str, load_fast: bool) -> TensorBoard:
    """A TensorBoard (the tests' launcher) with the given loader and its default reload interval, once it serves."""
    server = TensorBoard(logdir, [f"--load_fast={'true' if load_fast else 'false'}"], reload_interval=None)
    try:
        server.url(START_SECONDS)
    except BaseException:
        server.close()
        raise
    return server


def _query(**params: Any) -> str:
    return urllib.parse.urlencode(params)


def wait_ready(server: TensorBoard, ready, timeout: float, poll: float = 0.05) -> float:
    """Seconds from TensorBoard's start until ``ready(server)`` holds."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        server.check_alive()
        try:
            if ready(server):
                return server.seconds_since_start()
        except (RuntimeError, OSError, ValueError):
            pass
        time.sleep(poll)
    raise TimeoutError(f"TensorBoard not ready after {timeout:.0f} s")


def _run_entry(server: TensorBoard, run: str = RUN) -> Optional[dict]:
    status, body = server.get(f"{PLUGIN}/runs")
    if status != 200:
        return None
    return next((entry for entry in json.loads(body)["runs"] if entry["run"] == run), None)


def settled_rss_mib(pid: int, interval: float = 1.0, timeout: float = 30.0, tolerance: float = 0.01) -> float:
    """Resident memory (MiB) of ``pid`` and its descendants once two reads ``interval`` s apart differ by at most
    ``tolerance`` (TensorBoard has finished loading), or the last read after ``timeout`` s."""
    deadline = time.perf_counter() + timeout
    previous = rss_kib(pid)
    while True:
        time.sleep(interval)
        current = rss_kib(pid)
        if abs(current - previous) <= tolerance * previous or time.perf_counter() > deadline:
            return current / 1024
        previous = current


def measure(logdir: str, steps: int, load_fast: bool, requests: int, seed: int = 0, timeout: float = 300.0, run: str = RUN) -> dict:
    """Start-up times, p50/p95 per route (and the Images plugin's image route on the same PNGs),
    and resident memory with the log's size, for one loader; ``steps`` is the number logged (at least: a
    log still being written may have more by then), ``run`` the run measured."""
    rng = random.Random(seed)
    server = start(logdir, load_fast)
    try:
        result: dict[str, Any] = {"load_fast": load_fast, "log_bytes": directory_bytes(logdir)}
        result["seconds_to_runs"] = wait_ready(server, lambda s: bool((_run_entry(s, run) or {}).get("layers")), timeout)
        entry = _run_entry(server, run)
        layers_expected = [layer["layer"] for layer in entry["layers"]]
        first = layers_expected[0]
        result["seconds_to_grid"] = wait_ready(server, lambda s: s.get(f"{PLUGIN}/grid?{_query(run=run, layer=first, step=0)}")[0] == 200, timeout)

        def loaded(s: TensorBoard) -> bool:
            return all(len(s.json(f"{PLUGIN}/steps?{_query(run=run, layer=name)}")["steps"]) >= steps for name in layers_expected)

        result["seconds_to_all_steps"] = wait_ready(server, loaded, timeout, poll=0.5)
        result["layers"], result["steps"] = len(layers_expected), steps
        probes = entry["probes"]["count"] if entry.get("probes") else 1
        result["latency_ms"] = _latencies(server, run, layers_expected, steps, probes, requests, rng)
        result["images_plugin"] = _images_baseline(server, run, layers_expected, probes, requests, rng)
        result["rss_mib"] = settled_rss_mib(server.process.pid)
    finally:
        server.close()
    return result


def _latencies(server: TensorBoard, run: str, layers: list, steps: int, probes: int, requests: int, rng: random.Random) -> dict:
    paths = {
        "runs": lambda: f"{PLUGIN}/runs",
        "steps": lambda: f"{PLUGIN}/steps?{_query(run=run, layer=rng.choice(layers))}",
        "grid": lambda: f"{PLUGIN}/grid?{_query(run=run, layer=rng.choice(layers), step=rng.randrange(steps), probe=rng.randrange(probes))}",
        "stats": lambda: f"{PLUGIN}/stats?{_query(run=run, layer=rng.choice(layers), step=rng.randrange(steps))}",
        "activity": lambda: f"{PLUGIN}/activity?{_query(run=run, layer=rng.choice(layers))}",
    }
    timings: dict[str, list[float]] = {route: [] for route in ROUTES}
    for _ in range(requests):  # interleaved, so load from elsewhere hits every route alike
        for route in ROUTES:
            path = paths[route]()
            timings[route].append(elapsed_ms(lambda path=path: server.ok(path)))
    return {route: summary(values) for route, values in timings.items()}


def _images_baseline(server: TensorBoard, run: str, layers: list, probes: int, requests: int, rng: random.Random) -> dict:
    """The Images plugin's ``individualImage`` against our ``grid`` on the very same PNGs, request by request.

    On a log still being written the Images plugin drops older samples as steps arrive: a pair whose image has
    gone (404) is left out, and the samples are listed again."""

    def listed() -> list:
        found = []
        for layer in layers:
            tag = f"feature_maps/activations/{layer}"
            for probe in range(probes):
                for item in server.json(f"/data/plugin/images/images?{_query(run=run, tag=tag, sample=probe)}"):
                    found.append((layer, probe, item["step"], item["query"]))
        return found

    targets = listed()
    ours, theirs = [], []
    while len(ours) < requests:
        layer, probe, step, query = rng.choice(targets)
        ours_path = f"{PLUGIN}/grid?{_query(run=run, layer=layer, step=step, probe=probe)}"
        theirs_path = f"/data/plugin/images/individualImage?{query}"
        pair = {}
        for path in (ours_path, theirs_path) if rng.random() < 0.5 else (theirs_path, ours_path):
            started = time.perf_counter()
            status, _ = server.get(path)
            pair[path] = (status, (time.perf_counter() - started) * 1000.0)
        if pair[theirs_path][0] == 404:
            targets = listed()
            continue
        for path, into in ((ours_path, ours), (theirs_path, theirs)):
            if pair[path][0] != 200:
                raise RuntimeError(f"GET {path}: HTTP {pair[path][0]}")
            into.append(pair[path][1])
    layer, probe, step, query = targets[0]
    ours_body = server.ok(f"{PLUGIN}/grid?{_query(run=run, layer=layer, step=step, probe=probe)}")
    theirs_body = server.ok(f"/data/plugin/images/individualImage?{query}")
    return {
        "steps_kept": len({t[2] for t in targets}),
        "same_bytes": ours_body == theirs_body,
        "grid": summary(ours),
        "individualImage": summary(theirs),
    }


def idle_rss_mib(load_fast: bool) -> float:
    """Resident memory of a TensorBoard with an empty logdir (its fixed cost)."""
    with tempfile.TemporaryDirectory() as empty:
        server = start(empty, load_fast)
        try:
            wait_ready(server, lambda s: s.get("/data/plugins_listing")[0] == 200, 120)
            time.sleep(2.0)
            return rss_kib(server.process.pid) / 1024
        finally:
            server.close()


def serve_logs(workdir: str, seed_steps: int, large_steps: int, requests: int, loaders: Sequence[bool] = (True, False)) -> dict:
    """Writes the seed-like logdir (and the large one unless ``large_steps`` is 0) and measures each loader on each."""
    from . import logdirs

    logs = [("seed", logdirs.seed_layers(), seed_steps)]
    if large_steps:
        logs.append(("large", logdirs.noise_layers(20, probes=1, size=12, filters=16), large_steps))
    idle = {load_fast: idle_rss_mib(load_fast) for load_fast in loaders}
    results = []
    for name, layers, steps in logs:
        logdir = os.path.join(workdir, name)
        started = time.perf_counter()
        logdirs.write_log(logdir, layers, steps)
        entry = {"name": name, "probes": len(layers[0].maps), "write_seconds": time.perf_counter() - started, "loaders": []}
        for load_fast in loaders:
            run = measure(logdir, steps, load_fast, requests)
            run["idle_rss_mib"] = idle[load_fast]
            entry["loaders"].append(run)
        results.append(entry)
    return {"logs": results}
