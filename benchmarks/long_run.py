"""A real training's log dir, measured as it is: the post's 400 epochs (``python -m training.train --logdir LOGDIR``),
or any log the callback wrote, finished or still being written.

python -m benchmarks.long_run LOGDIR                      # both loaders, 50 requests per route, 3 figures
python -m benchmarks.long_run LOGDIR --loaders true --requests 20 --out results.json

Measured: the log's size (the whole log dir, the run's event files, per logged step); TensorBoard's resident memory
under each loader (``tensorboard`` and its data server, once loading has settled) above an idle TensorBoard; the time
from TensorBoard's start to the first ``runs`` listing with layers, the first grid answered and every step served;
``runs`` / ``grid`` (and the other routes') p50 and p95 over ``--requests`` requests each (:func:`serving.measure`);
and ``tb-featuremaps figure`` of the run's last layer at its middle step, each in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from tb_featuremaps import reader

from . import serving
from .common import directory_bytes, machine, summary
from .reading import _seconds


@dataclass
class LoggedRun:
    """The run of a log dir that is measured (:func:`largest_run`)."""

    name: str
    layers: list[str]
    """Layer paths, in model order."""
    steps: int
    """Steps every layer has logged."""
    middle_step: int
    """The middle one of the last layer's logged steps."""
    probes: int


def largest_run(logdir: str) -> LoggedRun:
    """The run of ``logdir`` with the most logged steps."""
    runs = {name: run for name, run in reader.load(logdir).items() if run.layers}
    if not runs:
        raise ValueError(f"no feature-maps run in {logdir}; pass the log dir the callback wrote")
    name = max(runs, key=lambda each: max(len(layer.steps) for layer in runs[each].layers.values()))
    run = runs[name]
    last = list(run.layers.values())[-1].steps
    steps = min(len(layer.steps) for layer in run.layers.values())
    return LoggedRun(name, list(run.layers), steps, int(last[len(last) // 2]), max(len(run.probe_labels), 1))


def figure_seconds(logdir: str, run: str, layer: str, step: int, repeats: int, workdir: str) -> dict:
    """``tb-featuremaps figure LOGDIR --run RUN --layer LAYER --step STEP`` in a fresh process, ``repeats`` times."""
    out = os.path.join(workdir, "figure.png")
    command = [sys.executable, "-m", "tb_featuremaps.export.cli", "figure", logdir, "--run", run, "--layer", layer, "--step", str(step), "-o", out]
    return {"layer": layer, "step": step, "seconds": summary(_seconds(command) for _ in range(repeats)), "figure_bytes": os.path.getsize(out)}


def measure_logdir(logdir: str, loaders: Sequence[bool], requests: int, repeats: int) -> dict:
    """Everything the module's docstring lists, for the run of ``logdir`` with the most steps."""
    run = largest_run(logdir)
    run_bytes = directory_bytes(os.path.join(logdir, run.name))
    result: dict[str, Any] = {
        "logdir": logdir,
        "run": run.name,
        "layers": run.layers,
        "probes": run.probes,
        "steps": run.steps,
        "logdir_bytes": directory_bytes(logdir),
        "run_bytes": run_bytes,
        "bytes_per_step": run_bytes / run.steps,
        "loaders": [],
    }
    with tempfile.TemporaryDirectory(prefix="tb_featuremaps_long_run_") as workdir:
        result["figure"] = figure_seconds(logdir, run.name, run.layers[-1], run.middle_step, repeats, workdir)
    for load_fast in loaders:
        measured = serving.measure(logdir, run.steps, load_fast, requests, run=run.name)
        measured["idle_rss_mib"] = serving.idle_rss_mib(load_fast)
        result["loaders"].append(measured)
    return result


def rows(result: dict) -> list:
    """The table rows: the run's size and figure, then the serving rows of :mod:`benchmarks.run` per loader."""
    from .run import Row, _serving_rows

    name = result["run"]
    figure = result["figure"]
    table = [
        Row(name, "logged steps x layers", f"{result['steps']} x {len(result['layers'])}"),
        Row(
            name,
            "log dir / run size (MB); run bytes per step (KB)",
            f"{result['logdir_bytes'] / 1e6:.1f} / {result['run_bytes'] / 1e6:.1f}; {result['bytes_per_step'] / 1e3:.0f}",
        ),
        Row(
            name,
            f"tb-featuremaps figure --layer {figure['layer']} --step {figure['step']} (s, p50 of {figure['seconds']['n']}, fresh process)",
            f"{figure['seconds']['p50']:.2f}",
            "<= 2",
            figure["seconds"]["p50"] <= 2,
        ),
    ]
    log = {"name": name, "probes": result["probes"]}
    for measured in result["loaders"]:
        table += _serving_rows(log, measured)
    return table


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.long_run", description=__doc__.split("\n")[0])
    parser.add_argument("logdir", help="the log dir a training wrote (FeatureMapsCallback's log_dir)")
    parser.add_argument("--loaders", default="true,false", help="TensorBoard --load_fast values measured (default: true,false)")
    parser.add_argument("--requests", type=int, default=50, help="requests per route (default: 50)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh tb-featuremaps figure processes timed (default: 3)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "long_run.json"), help="JSON output path")
    args = parser.parse_args(argv)
    values = [value.strip().lower() for value in args.loaders.split(",")]
    if not values or any(value not in ("true", "false") for value in values):
        parser.error(f"--loaders must be true, false or both (comma-separated), got {args.loaders!r}")
    if args.requests < 1 or args.repeats < 1:
        parser.error("--requests and --repeats must be at least 1")
    args.loaders = tuple(value == "true" for value in values)
    return args


def main(argv: Optional[Sequence[str]] = None, progress: Callable[[str], None] = print) -> dict:
    """Measures the log dir; returns (and writes) the JSON document, prints the table."""
    from .run import table

    args = parse_args(argv)
    document = {"machine": machine(), **measure_logdir(args.logdir, args.loaders, args.requests, args.repeats)}
    document["load_average_end"] = list(os.getloadavg())
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
    progress(table(rows(document)))
    return document


if __name__ == "__main__":
    main()
