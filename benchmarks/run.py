"""Runs the benchmarks, prints a table and writes JSON.

python -m benchmarks.run                  # everything, about 10 minutes on 2 cores
python -m benchmarks.run --quick          # fewer repetitions and smaller logs, under 2 minutes
python -m benchmarks.run --only stages,serving --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@dataclass(frozen=True)
class Plan:
    """How much of each benchmark to run."""

    events: int  # log events timed per callback
    fit_repeats: int  # alternated one-epoch fits per variant
    train_digits: int
    matplotlib_probes: int  # probes the matplotlib way draws (it is linear in them)
    mobilenet_events: int
    resnet_events: int  # ResNet50@224 log events timed on the training thread
    seed_steps: int  # steps of the seed-like logdir
    large_steps: int  # steps of the 20-layer logdir (0: skipped)
    requests: int  # requests per route
    browser_steps: int  # slider moves timed
    loaders: tuple[bool, ...]  # TensorBoard --load_fast values measured
    cli_repeats: int  # fresh processes per command of the cli section (its log has seed_steps steps)
    many_runs: int  # runs in the many_runs logdir
    long_steps: int  # steps of the long_run logdir (20 layers)
    long_block: int  # of which written by FeatureMapsWriter (then copied with shifted steps)
    read_requests: int  # requests per route on the many_runs and long_run logdirs
    settling_epochs: int  # epochs of the settling section's training (pool of 500)


FULL = Plan(
    events=9,
    fit_repeats=5,
    train_digits=4000,
    matplotlib_probes=2,
    mobilenet_events=3,
    resnet_events=3,
    seed_steps=401,
    large_steps=2000,
    requests=200,
    browser_steps=60,
    loaders=(True, False),
    cli_repeats=3,
    many_runs=1000,
    long_steps=10000,
    long_block=500,
    read_requests=50,
    settling_epochs=30,
)
QUICK = Plan(
    events=3,
    fit_repeats=2,
    train_digits=1000,
    matplotlib_probes=1,
    mobilenet_events=1,
    resnet_events=1,
    seed_steps=101,
    large_steps=0,
    requests=40,
    browser_steps=20,
    loaders=(True,),
    cli_repeats=1,
    many_runs=200,
    long_steps=1000,
    long_block=100,
    read_requests=20,
    settling_epochs=4,
)
SECTIONS = (
    "stages",
    "bytes",
    "events",
    "thread",
    "overhead",
    "mobilenet",
    "pool",
    "patches",
    "budget",
    "settling",
    "serving",
    "browser",
    "layers_scroll",
    "cli",
    "many_runs",
    "long_run",
)


def run_section(name: str, plan: Plan, workdir: str) -> dict:
    """Runs one benchmark section; returns its results."""
    if name == "stages":
        from .training import seed_stages

        return seed_stages(workdir, plan.events)
    if name == "bytes":
        from .step_bytes import step_bytes

        return step_bytes(workdir, plan.events)
    if name == "events":
        from .training import per_event

        return per_event(workdir, plan.events, plan.matplotlib_probes)
    if name == "thread":
        from .training import training_thread

        return training_thread(workdir, plan.events, plan.resnet_events)
    if name == "overhead":
        from .training import fit_overhead

        return fit_overhead(workdir, plan.fit_repeats, plan.train_digits)
    if name == "mobilenet":
        from .training import mobilenet

        return mobilenet(workdir, plan.mobilenet_events)
    if name == "layers_scroll":
        from .browser import measure_layers_scroll

        return measure_layers_scroll(workdir, plan.loaders)
    if name == "pool":
        from .strongest import pool_cost

        return pool_cost(workdir, plan.events, plan.train_digits, plan.loaders, plan.requests)
    if name == "patches":
        from .strongest import patch_cost, strongest_stage_224

        return {**patch_cost(min(plan.events, 3)), "stage_224": strongest_stage_224(workdir, min(plan.events, 3))}
    if name == "budget":
        from .budget import NETWORKS, budget_cost

        return budget_cost(workdir, NETWORKS, (500, 0), min(plan.events, 2))
    if name == "settling":
        from .strongest import settling

        return settling(workdir, plan.settling_epochs, plan.train_digits)
    if name == "serving":
        from .serving import serve_logs

        return serve_logs(workdir, plan.seed_steps, plan.large_steps, plan.requests, plan.loaders)
    if name == "cli":
        from .reading import cli_cold

        return cli_cold(workdir, plan.seed_steps, plan.cli_repeats)
    if name == "many_runs":
        from .reading import many_runs

        return many_runs(workdir, plan.many_runs, plan.loaders, plan.read_requests)
    if name == "long_run":
        from .reading import long_run

        return long_run(workdir, plan.long_steps, 20, plan.long_block, plan.read_requests, plan.loaders)
    from .browser import measure_panel

    return measure_panel(workdir, plan.seed_steps, plan.browser_steps, plan.loaders)


# Table ---------------------------------------------------------------------


@dataclass
class Row:
    section: str
    metric: str
    value: str
    target: str = ""
    met: Optional[bool] = None


def _get(data: dict, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _rows(results: dict) -> list[Row]:
    rows = [Row(name, "failed", result["error"].splitlines()[0]) for name, result in results.items() if "error" in result]
    results = {name: result for name, result in results.items() if "error" not in result}
    add = rows.append
    stages = _get(results, "stages", "ms")
    if stages:
        add(Row("seed event", "stages (ms)", ", ".join(f"{k} {v:.1f}" for k, v in stages.items() if k != "total")))
        add(Row("seed event", "sum of stages (ms)", f"{stages['total']:.1f}", "<= 50", stages["total"] <= 50))
    for variant, measured in (results.get("bytes") or {}).items():
        split = ", ".join(f"{kind} {size / 1e3:.0f}" for kind, size in measured["per_step_by_kind"].items())
        target = ("<= 300", measured["bytes_per_step"] <= 300_000) if variant == "default" else ("", None)
        add(Row("seed log", f"bytes per step, {variant} (KB: {split})", f"{measured['bytes_per_step'] / 1e3:.0f}", *target))
    events = results.get("events")
    if events:
        ms, ratios = events["ms"], events["ratio_to_ours"]
        add(Row("seed event", "FeatureMapsCallback, one log event (ms)", f"{ms['feature_maps']:.1f}", "<= 50", ms["feature_maps"] <= 50))
        add(
            Row(
                "seed event",
                "keras TensorBoard(histogram_freq=1, write_images=True) (ms)",
                f"{ms['keras_tensorboard']:.0f} ({ratios['keras_tensorboard']:.0f}x ours)",
            )
        )
        probes = events["matplotlib_probes_timed"]
        add(
            Row(
                "seed event",
                f"matplotlib figures + tf.summary.image, 10 probes (ms; timed on {probes})",
                f"{ms['matplotlib']:.0f} ({ratios['matplotlib']:.0f}x ours)",
                ">= 10x ours",
                ratios["matplotlib"] >= 10,
            )
        )
    for name, label in (("seed", "seed model, 10 probes"), ("resnet50_224", "ResNet50 at 224x224, 10 probes")):
        thread = _get(results, "thread", name)
        if thread:
            section = f"training thread, {label}"
            add(
                Row(
                    section,
                    "forward floor / training thread / whole event (ms)",
                    f"{thread['forward_ms']:.1f} / {thread['thread_ms']:.1f} / {thread['event_ms']:.0f}",
                )
            )
            ratio = thread["thread_to_forward"]
            add(Row(section, "training thread / forward floor", f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5))
    overhead = results.get("overhead")
    if overhead:
        wall, cpu = overhead["epoch_wall_seconds"]["none"], overhead["epoch_cpu_seconds"]["none"]
        add(
            Row(
                "seed fit",
                f"epoch without callback, {overhead['train_digits']} digits (s wall, p50 [min-max] / s CPU)",
                f"{wall['p50']:.2f} [{wall['min']:.1f}-{wall['max']:.1f}] / {cpu['p50']:.2f}",
            )
        )
        for name, label in (("feature_maps", "FeatureMapsCallback"), ("keras_tensorboard", "keras TensorBoard(histogram_freq=1, write_images=True)")):
            value = overhead[f"{name}_cpu_overhead"]
            target = ("<= 2%", value <= 0.02) if name == "feature_maps" else ("", None)
            add(
                Row(
                    "seed fit",
                    f"{label} overhead, per-epoch logging (CPU time; wall time)",
                    f"{value:+.1%}; {overhead[f'{name}_wall_overhead']:+.1%}",
                    *target,
                )
            )
        if events:
            share = events["ms"]["feature_maps"] / 1000 / wall["p50"]
            add(Row("seed fit", "one log event / epoch wall time", f"{share:.2%}", "<= 2%", share <= 0.02))
    mobile = results.get("mobilenet")
    if mobile:
        add(Row("MobileNetV2", "layers logged (of all layers)", f"{mobile['layers_logged']} of {mobile['layers_in_model']}"))
        add(Row("MobileNetV2", "one log event (ms, p50)", f"{mobile['ms']['p50']:.0f}"))
        add(Row("MobileNetV2", "stages (ms)", ", ".join(f"{k} {v:.0f}" for k, v in mobile["stages"]["ms"].items() if k != "total")))
        add(Row("MobileNetV2", "log bytes per step (MB)", f"{mobile['bytes_per_step'] / 1e6:.1f}"))
        add(Row("MobileNetV2", "peak traced memory of one event (MiB)", f"{mobile['peak_traced_mib']:.0f}"))
        caps = mobile["max_filters_shown"] <= 128 and mobile["max_tile"] <= 64
        largest = mobile["largest_grid"]
        add(
            Row(
                "MobileNetV2",
                "most filters drawn / widest tile / largest grid",
                f"{mobile['max_filters_shown']} of {mobile['max_filters_total']} / {mobile['max_tile']} px / {largest['width']}x{largest['height']}",
                "<= 128 / <= 64",
                caps,
            )
        )
    for log in [*(_get(results, "serving", "logs") or []), *([results["long_run"]] if "long_run" in results else [])]:
        for run in log["loaders"]:
            rows += _serving_rows(log, run)
    browser = results.get("browser")
    if browser:
        for loader in browser.get("loaders", []):
            section = f"browser, load_fast={str(loader['load_fast']).lower()}"
            add(Row(section, "first grid painted (s from opening the panel)", f"{loader['seconds_to_first_grid']:.2f}"))
            rate = loader["steps_per_second"]
            add(Row(section, f"scrubbing the slider (steps/s, {browser['steps']}-step log)", f"{rate:.1f}", ">= 20", rate >= 20))
            painted = loader["new_layer_ms"]
            add(Row(section, "a layer not seen before: choice to its grid painted (ms, browser clock)", f"{painted:.0f}", "<= 150", painted <= 150))
            for key, what in (("far_layer_ms", "not beside the one shown"), ("next_layer_ms", "beside the one shown (read ahead)")):
                if key in loader:
                    ms = loader[key]
                    opened = f"a layer not seen before, {what}: p50 / p95 (ms, {ms['n']} fresh panels)"
                    add(Row(section, opened, f"{ms['p50']:.0f} / {ms['p95']:.0f}", "p50 <= 150", ms["p50"] <= 150))
        if not browser.get("measured"):
            add(Row("browser", "panel", f"not measured: {browser.get('reason', '')}"))
    rows += _reading_rows(results)
    rows += _strongest_rows(results)
    scroll = results.get("layers_scroll")
    for loader in (scroll or {}).get("loaders", []):
        section = f"browser All layers, {scroll['layers']} ResNet50-shaped layers, load_fast={str(loader['load_fast']).lower()}"
        frames = loader["frame_ms"]
        rows.append(Row(section, "grids asked before scrolling", f"{loader['grid_requests_before_scrolling']} of {scroll['layers']}"))
        rows.append(
            Row(
                section,
                f"scrolling {loader['page_height']} px, 60 px a frame: frame p50 / p95 / max (ms)",
                f"{frames['p50']:.1f} / {frames['p95']:.1f} / {frames['max']:.0f}",
                "p95 <= 33",
                frames["p95"] <= 33,
            )
        )
    return rows


def _strongest_rows(results: dict) -> list[Row]:
    rows = []
    pool = results.get("pool")
    if pool:
        section, epoch = f"seed event, pool of {pool['pool_size']}", pool["epoch_seconds"]
        event = pool["event_ms"]
        rows.append(Row(section, "whole log event without / with the pool (ms, p50)", f"{event['no_pool']['p50']:.0f} / {event['pool']['p50']:.0f}"))
        thread = pool["thread_ms"]
        rows.append(
            Row(section, "training thread without / with the pool (ms, p50)", f"{thread['no_pool']['p50']:.0f} / {thread['pool']['p50']:.0f}")
        )
        rows.append(
            Row(
                section,
                f"full-MNIST epoch (s; {epoch['digits']} digits timed, x{60000 / epoch['digits']:.0f})",
                f"{epoch['full_mnist_estimate']:.0f} ({epoch['measured']:.1f} measured)",
            )
        )
        share = pool["extra_to_full_epoch"]
        rows.append(Row(section, "extra cost per event / full-MNIST epoch", f"{share:.2%}", "<= 10%", share <= 0.10))
        per_step = pool["bytes_per_step"]
        rows.append(
            Row(section, "log bytes per step without / with the pool (KB)", f"{per_step['no_pool'] / 1e3:.0f} / {per_step['pool'] / 1e3:.0f}")
        )
    budgeted = results.get("budget")
    for case, measured in (budgeted or {}).get("cases", {}).items():
        section = f"{case}, {budgeted['side']} px, {budgeted['probes']} probes, default arguments ({measured['layers']} layers)"
        reduced = ", ".join(measured["reduced"]) or "nothing"
        largest = f"{max(measured['step_bytes']) / 2**20:.2f} of {measured['max_step_bytes'] / 2**20:.0f}"
        rows.append(Row(section, f"largest step (MiB; reduced: {reduced})", largest, "<= max_step_bytes", measured["within"]))
        ratio = measured["thread_to_forward"]
        times = f"{measured['thread_ms']:.0f} / {measured['forward_ms']:.0f} ms"
        rows.append(Row(section, f"training thread / forward floor ({times})", f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5))
        ratio = measured["event_to_thread"]
        rows.append(Row(section, f"whole event / training thread ({measured['event_ms']:.0f} ms)", f"{ratio:.2f}x", "<= 2x", ratio <= 2))
        strongest_ms = measured["largest_strongest_ms"]
        what = "largest strongest-inputs stage of a layer (ms; patch sheet, ranking, PNG)"
        rows.append(Row(section, what, f"{strongest_ms:.0f}", "<= 200", strongest_ms <= 200))
        rows.append(Row(section, "first step, which decides the drawing (ms)", f"{measured['first_step_ms']:.0f}"))
    patches = results.get("patches")
    for size, measured in (patches or {}).get("fields", {}).items():
        section = f"patch sheet, {size} px field on a {patches['side']} px RGB pool of {patches['pool_size']}"
        rows.append(
            Row(
                section,
                f"{patches['filters']} filters x {patches['top_k']}: clipped to the input / cropped at the field's size (ms)",
                f"{measured['clipped_ms']:.0f} / {measured['nominal_ms']:.0f} ({measured['nominal_to_clipped']:.0f}x)",
                "clipped <= 200",
                measured["clipped_ms"] <= 200,
            )
        )
    stage = (patches or {}).get("stage_224")
    if stage:
        section = f"{stage['network']} 224 px, pool of {stage['pool_size']}, default arguments (reduced: {', '.join(stage['reduced']) or 'nothing'})"
        largest = max(stage["strongest_ms"], key=stage["strongest_ms"].get)
        what = f"largest strongest-inputs stage of a layer ({largest}, field {stage['fields'][largest][0]} px; ms, p50 of {stage['repeats']})"
        rows.append(Row(section, what, f"{stage['strongest_ms'][largest]:.0f}", "<= 200", stage["strongest_ms"][largest] <= 200))
    settled = results.get("settling")
    for path, layer in (settled or {}).get("layers", {}).items():
        section = f"settling, {settled['epochs']} epochs on {settled['train_digits']} digits"
        curve = ", ".join(f"{fraction:.2f}" for fraction in layer["changing_filters"][:: max(1, len(layer["changing_filters"]) // 8)])
        rows.append(Row(section, f"{path}: filters still changing (sampled epochs); settles at epoch", f"{curve}; {layer['settled_at']}"))
    return rows


def _reading_rows(results: dict) -> list[Row]:
    rows = []
    cli = results.get("cli")
    if cli:
        section, seconds, ratio = "cli, cold process", cli["seconds"], cli["baseline_over"]
        base = seconds["event_accumulator"]["p50"]
        rows.append(Row(section, "log: steps, size (MB)", f"{cli['steps']} steps of the post's model, {cli['log_bytes'] / 1e6:.0f}"))
        rows.append(Row(section, "EventAccumulator(tensors=0).Reload() of the run (s, baseline)", f"{base:.2f}"))
        for name, target in (("figure", 2.0), ("list", 1.0)):
            value = seconds[name]["p50"]
            rows.append(
                Row(
                    section,
                    f"tb-featuremaps {name} (s, p50 of {cli['repeats']})",
                    f"{value:.2f} (baseline {ratio[name]:.1f}x slower)",
                    f"<= {target:.0f}",
                    value <= target,
                )
            )
        rows.append(Row(section, "python -c pass (s)", f"{seconds['python_startup']['p50']:.2f}"))
    many = results.get("many_runs")
    for entry in (many or {}).get("loaders", []):
        section = f"{many['runs']} runs, load_fast={str(entry['load_fast']).lower()}"
        rows.append(Row(section, "log size (MB)", f"{many['log_bytes'] / 1e6:.1f}"))
        listed = f"{entry['seconds_to_core_runs']:.1f} / {entry['seconds_to_listed']:.1f}"
        rows.append(Row(section, "start to /data/runs all / plugin lists all (s)", listed))
        cold_s = entry["cold_ms"] / 1000
        rows.append(
            Row(
                section,
                "runs cold: first request once /data/runs lists all (s; runs listed)",
                f"{cold_s:.2f}; {entry['cold_listed']} of {many['runs']}",
                "<= 2",
                cold_s <= 2 and entry["cold_listed"] == many["runs"],
            )
        )
        ours, theirs = entry["runs_ms"], entry["scalars_tags_ms"]
        rows.append(
            Row(
                section,
                "runs warm vs Scalars tags, p50 / p95 (ms)",
                f"{ours['p50']:.1f} / {ours['p95']:.1f} vs {theirs['p50']:.1f} / {theirs['p95']:.1f} (p95 {ours['p95'] / theirs['p95']:.2f}x)",
            )
        )
        rows.append(Row(section, "resident memory (MiB)", f"{entry['rss_mib']:.0f}"))
    return rows


def _serving_rows(log: dict, run: dict) -> list[Row]:
    section = f"TensorBoard {log['name']}, load_fast={str(run['load_fast']).lower()}"
    latency, images = run["latency_ms"], run["images_plugin"]
    rows = [
        Row(section, "log size (MB), steps x layers x probes", f"{run['log_bytes'] / 1e6:.0f}, {run['steps']} x {run['layers']} x {log['probes']}"),
        Row(
            section,
            "start to runs / first grid / all steps (s)",
            f"{run['seconds_to_runs']:.1f} / {run['seconds_to_grid']:.1f} / {run['seconds_to_all_steps']:.1f}",
        ),
    ]
    for route, values in latency.items():
        target, met = "", None
        if route == "grid":
            target, met = "p95 <= 20", values["p95"] <= 20
        if route == "runs" and log["name"] in ("large", "long"):
            target, met = "p95 <= 100", values["p95"] <= 100
        rows.append(Row(section, f"{route} p50 / p95 (ms)", f"{values['p50']:.1f} / {values['p95']:.1f}", target, met))
    ratio = images["grid"]["p95"] / images["individualImage"]["p95"]
    rows.append(
        Row(
            section,
            "same PNGs: grid vs Images individualImage p50 / p95 (ms)",
            f"{images['grid']['p50']:.1f} / {images['grid']['p95']:.1f} vs {images['individualImage']['p50']:.1f} / "
            f"{images['individualImage']['p95']:.1f} (p95 {ratio:.2f}x)",
            "<= 1.5x",
            ratio <= 1.5,
        )
    )
    rss, idle = run["rss_mib"], run["idle_rss_mib"]
    log_mib = run["log_bytes"] / 2**20
    growth = (rss - idle) / log_mib
    rows.append(
        Row(
            section,
            "resident memory above an idle TensorBoard / log size (MiB)",
            f"{rss:.0f} - {idle:.0f} idle = {rss - idle:.0f} ({growth:.2f}x the log; {rss / log_mib:.1f}x with the idle part)",
            "<= 2x",
            growth <= 2,
        )
    )
    return rows


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| section | metric | value | target | met |", "|---|---|---|---|---|"]
    for row in rows:
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(f"| {row.section} | {row.metric} | {row.value} | {row.target} | {met} |")
    return "\n".join(lines)


# Command line ----------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller logs (under 2 minutes)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results", "latest.json"), help="JSON output path")
    parser.add_argument("--only", help=f"comma-separated sections to run (default: all of {', '.join(SECTIONS)})")
    args = parser.parse_args(argv)
    args.sections = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = [section for section in args.sections if section not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: Optional[Sequence[str]] = None, progress: Callable[[str], None] = print) -> dict:
    """Runs the chosen sections; returns (and writes) the JSON document."""
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    from .common import machine

    document: dict[str, Any] = {"mode": "quick" if args.quick else "full", "plan": plan.__dict__, "machine": machine(), "sections": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tb_featuremaps_bench_") as workdir, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in args.sections:
            progress(f"[{time.perf_counter() - started:5.0f} s] {name} ...")
            section_dir = os.path.join(workdir, name)
            os.makedirs(section_dir)
            try:
                document["sections"][name] = run_section(name, plan, section_dir)
            except Exception as error:  # one broken part must not lose the others' results
                document["sections"][name] = {"error": f"{type(error).__name__}: {error}"}
                progress(f"{name} failed: {type(error).__name__}: {error}")
    document["seconds"] = time.perf_counter() - started
    rows = _rows(document["sections"])
    document["table"] = [row.__dict__ for row in rows]
    document["targets"] = [
        {"section": r.section, "metric": r.metric, "value": r.value, "target": r.target, "met": r.met} for r in rows if r.met is not None
    ]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
    progress(table(rows))
    progress(f"\n{document['mode']} run: {document['seconds']:.0f} s on {document['machine']['cores']} cores; JSON in {args.out}")
    return document


if __name__ == "__main__":
    main()
