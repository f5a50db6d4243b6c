"""Reading logs back: the command line cold against TensorBoard's Python loader, 1,000 runs in one logdir,
and one long run (10,000 steps x 20 layers) served by a real TensorBoard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from tests.helpers.tensorboard import TensorBoard

from . import logdirs, serving
from .common import directory_bytes, elapsed_ms, rss_kib, summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADER_BASELINE = """
import sys
from tensorboard.backend.event_processing import event_accumulator as ea
guidance = {ea.TENSORS: 0, ea.SCALARS: 0, ea.IMAGES: 0, ea.HISTOGRAMS: 0, ea.COMPRESSED_HISTOGRAMS: 0, ea.AUDIO: 0}
accumulator = ea.EventAccumulator(sys.argv[1], size_guidance=guidance)
accumulator.Reload()
print(sum(len(accumulator.Tensors(tag)) for tag in accumulator.Tags()["tensors"]))
"""


def _env() -> dict:
    """This checkout first on the path (the installed package may come from another checkout)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([ROOT, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _seconds(command: Sequence[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return seconds


def write_seed_run(logdir: str, steps: int, seed: int = 0) -> str:
    """The post's model logged with ``FeatureMapsLogger.log`` at ``steps`` steps, its kernels nudged between steps; the run folder."""
    import keras

    from tb_featuremaps import FeatureMapsLogger
    from training.model import build_model

    keras.utils.set_random_seed(seed)
    model = build_model()
    rng = np.random.default_rng(seed)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    logger = FeatureMapsLogger(model, logdir)
    for step in range(steps):
        if not logger.log(step):
            raise RuntimeError(f"logging step {step} failed (see the warning)")
        for layer in convs:  # untrained, but the maps still change from step to step
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            layer.kernel.assign(kernel + rng.normal(0.0, 0.01, kernel.shape).astype(kernel.dtype))
    logger.close()
    return logger.writer.run_dir


def cli_cold(workdir: str, steps: int, repeats: int) -> dict:
    """``tb-featuremaps figure`` and ``list`` against loading the whole run with ``EventAccumulator``, each in a fresh process."""
    logdir = os.path.join(workdir, "logs")
    started = time.perf_counter()
    run_dir = write_seed_run(logdir, steps)
    write_seconds = time.perf_counter() - started
    cli = [sys.executable, "-m", "tb_featuremaps.export.cli"]
    out = os.path.join(workdir, "figure.png")
    commands = {
        "figure": [*cli, "figure", logdir, "--layer", "conv2", "--step", str(steps // 2), "-o", out],
        "list": [*cli, "list", logdir],
        "event_accumulator": [sys.executable, "-c", LOADER_BASELINE, run_dir],
        "python_startup": [sys.executable, "-c", "pass"],
    }
    timings: dict[str, list[float]] = {name: [] for name in commands}
    for repeat in range(repeats):  # rotated, so other load hits each alike
        names = list(commands)
        names = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in names:
            timings[name].append(_seconds(commands[name]))
    seconds = {name: summary(values) for name, values in timings.items()}
    baseline = seconds["event_accumulator"]["p50"]
    return {
        "steps": steps,
        "repeats": repeats,
        "log_bytes": directory_bytes(logdir),
        "write_seconds": write_seconds,
        "figure_bytes": os.path.getsize(out),
        "seconds": seconds,
        "baseline_over": {name: baseline / seconds[name]["p50"] for name in ("figure", "list")},
    }


# Many runs -------------------------------------------------------------------


def write_many_runs(logdir: str, count: int, seed: int = 0) -> None:
    """``count`` runs of one 8x8x4 layer, 2 steps each, one probe, written with ``FeatureMapsWriter``."""
    from tb_featuremaps import FeatureMapsWriter

    rng = np.random.default_rng(seed)
    probes = np.full((1, 8, 8, 1), 0.5, np.float32)
    for index in range(count):
        with FeatureMapsWriter(logdir, probes, ["0"], run_name=f"run{index}") as writer:
            for step in range(2):
                writer.write(step, {"conv": np.maximum(rng.normal(size=(1, 8, 8, 4)), 0).astype(np.float32)})


def _listed(server: TensorBoard) -> int:
    return sum(1 for run in server.json(f"{serving.PLUGIN}/runs")["runs"] if run["layers"])


def many_runs(workdir: str, count: int, loaders: Sequence[bool], requests: int, timeout: float = 300.0) -> dict:
    """The plugin's ``runs`` route over ``count`` runs: cold (first request once TensorBoard's ``/data/runs``
    lists them all) and warm, against the Scalars plugin's ``tags`` route over the same runs."""
    logdir = os.path.join(workdir, "runs")
    started = time.perf_counter()
    write_many_runs(logdir, count)
    result: dict[str, Any] = {"runs": count, "write_seconds": time.perf_counter() - started, "log_bytes": directory_bytes(logdir), "loaders": []}
    for load_fast in loaders:
        server = serving.start(logdir, load_fast)
        try:
            entry: dict[str, Any] = {"load_fast": load_fast}
            entry["seconds_to_core_runs"] = serving.wait_ready(server, lambda s: len(s.json("/data/runs")) >= count, timeout)
            started = time.perf_counter()
            body = server.ok(f"{serving.PLUGIN}/runs")
            entry["cold_ms"] = (time.perf_counter() - started) * 1000
            entry["cold_listed"] = sum(1 for run in json.loads(body)["runs"] if run["layers"])
            entry["seconds_to_listed"] = serving.wait_ready(server, lambda s: _listed(s) >= count, timeout, poll=0.2)
            ours, theirs = [], []
            for _ in range(requests):  # interleaved
                ours.append(elapsed_ms(lambda server=server: server.ok(f"{serving.PLUGIN}/runs")))
                theirs.append(elapsed_ms(lambda server=server: server.ok("/data/plugin/scalars/tags")))
            entry["runs_ms"], entry["scalars_tags_ms"] = summary(ours), summary(theirs)
            entry["scalars_tags_runs"] = len(server.json("/data/plugin/scalars/tags"))
            entry["rss_mib"] = rss_kib(server.process.pid) / 1024
        finally:
            server.close()
        result["loaders"].append(entry)
    return result


# One long run ----------------------------------------------------------------


def write_long_run(logdir: str, steps: int, layers: int, block: int) -> str:
    """``steps`` steps x ``layers`` small noise layers: ``block`` steps written by ``FeatureMapsWriter``
    (:func:`logdirs.write_log`), then its events copied, steps and wall times shifted, into a second
    event file of the run until ``steps`` (writing all 10,000 steps through the writer takes about 6 minutes on 2 cores)."""
    from tb_featuremaps.format import eventfile, metadata

    block = min(block, steps)
    logdirs.write_log(logdir, logdirs.noise_layers(layers, probes=1, size=4, filters=4), block)
    run_dir = os.path.join(logdir, logdirs.RUN)
    (source,) = [name for name in os.listdir(run_dir) if name.startswith("events.out.tfevents.")]
    events = [
        event
        for event in eventfile.read_events(os.path.join(run_dir, source))
        if event.HasField("summary") and all(value.tag != metadata.PROBES_TAG for value in event.summary.value)
    ]
    base_steps = [event.step for event in events]
    span = events[-1].wall_time - events[0].wall_time + 0.01
    time.sleep(1.0)  # the copy's file name sorts after the writer's
    copy = eventfile.EventFile(run_dir)
    try:
        for first in range(block, steps, block):
            for event, base in zip(events, base_steps):
                if first + base >= steps:
                    continue
                event.step, event.wall_time = first + base, event.wall_time + span
                copy.add(event)
            copy.flush()
    finally:
        copy.close()
    return logdir


def long_run(workdir: str, steps: int, layers: int, block: int, requests: int, loaders: Sequence[bool]) -> dict:
    """:func:`serving.measure` (route latencies, the Images plugin's route on the same PNGs, memory) on one long run."""
    logdir = os.path.join(workdir, "long")
    started = time.perf_counter()
    write_long_run(logdir, steps, layers, block)
    entry = {"name": "long", "probes": 1, "write_seconds": time.perf_counter() - started, "written_by_writer": min(block, steps), "loaders": []}
    for load_fast in loaders:
        run = serving.measure(logdir, steps, load_fast, requests)
        run["idle_rss_mib"] = serving.idle_rss_mib(load_fast)
        entry["loaders"].append(run)
    return entry
