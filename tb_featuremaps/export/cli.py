"""The ``tb-featuremaps`` command line: list a logdir, export figures, contact sheets, GIFs, each filter's strongest inputs and
which layers have settled.

Every problem with the arguments or the logdir ends the command with exit code 2
and one line on stderr that names the problem and the fix.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Optional, TextIO

from ..format import filesystem, metadata

PROG = "tb-featuremaps"


class CliError(Exception):
    """A problem the user can fix; its message is the whole error line."""


class Progress:
    """A one-line text progress bar on stderr, drawn only when ``enabled``."""

    def __init__(self, label: str, total: int, enabled: bool, stream: Optional[TextIO] = None, width: int = 30):
        self.label, self.total, self.enabled, self.width = label, max(total, 1), enabled, width
        self.stream = sys.stderr if stream is None else stream
        self.done = 0

    def __call__(self) -> None:
        self.done += 1
        if self.enabled:
            filled = self.width * self.done // self.total
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()


def _compact(steps: Sequence[int]) -> str:
    steps = [int(step) for step in steps]
    if len(steps) > 2 and steps == list(range(steps[0], steps[-1] + 1)):
        return f"{steps[0]}..{steps[-1]}"
    return ", ".join(map(str, steps)) if len(steps) <= 8 else f"{', '.join(map(str, steps[:3]))}, ..., {steps[-1]}"


def _plural(unit: str) -> str:
    """The plural of a step unit: ``epochs``, ``batches``."""
    return "batches" if unit == "batch" else f"{unit}s"


_reported: set = set()
"""The read failures already printed by this command (it may read a run more than once)."""


def _read(logdir: str, run: Optional[str] = None, layers: Optional[Sequence[str]] = None) -> dict:
    """``reader.load``; each run or series it left out is printed once on stderr (``warning:`` and why), the rest used."""
    import warnings

    from ..format import reader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", reader.ReadWarning)  # printed below, one line each
        runs = reader.load(logdir, run, layers)
    for failure in runs.failures:
        if failure not in _reported:
            _reported.add(failure)
            print(f"{PROG}: warning: {failure}", file=sys.stderr)
    return runs


def _load(logdir: str, layers: Optional[Sequence[str]] = None) -> dict:
    """Every feature-map run of ``logdir`` (with only ``layers``); CliError if there is none."""
    if not filesystem.isdir(logdir):
        raise CliError(f"logdir {logdir!r} does not exist; pass the log_dir given to FeatureMapsCallback")
    runs = _read(logdir, layers=layers)
    if not runs:
        raise CliError(f"no feature-map runs under {logdir!r}; train with FeatureMapsCallback({logdir!r}) first or pass the right logdir")
    return runs


def _run(runs: dict, name: Optional[str]):
    if name is None:
        if metadata.DEFAULT_RUN_NAME in runs or len(runs) == 1:
            return runs.get(metadata.DEFAULT_RUN_NAME) or next(iter(runs.values()))
        raise CliError(f"the logdir has several runs; pass --run with one of: {', '.join(runs)}")
    if name not in runs:
        raise CliError(f"unknown run {name!r}; available runs: {', '.join(runs)} (pass --run NAME)")
    return runs[name]


def _layer(run, name: str, kind: str):
    table = run.weights if kind == metadata.KIND_WEIGHTS else run.layers
    if name not in table:
        available = ", ".join(table) or "none"
        raise CliError(f"unknown {kind} layer {name!r} in run {run.name!r}; available: {available} (pass --layer NAME)")
    return table[name]


def _selection(args):
    """The run and the layer that ``--run``, ``--layer`` and ``--kind`` pick in ``logdir``.

    Reads only that run (``--run``, else the default run if there is one) and
    decodes only that layer; the whole logdir or run only to name what else there is.
    """
    runs = _read(args.logdir, args.run or metadata.DEFAULT_RUN_NAME, [args.layer]) or _load(args.logdir, [args.layer])
    run = _run(runs, args.run)
    if args.layer not in (run.weights if args.kind == metadata.KIND_WEIGHTS else run.layers):
        run = _read(args.logdir, run.name)[run.name]
    return run, _layer(run, args.layer, args.kind)


def _no_pool(run) -> str:
    return (
        f"run {run.name!r} has no strongest inputs: it was logged without a pool; "
        "pass pool= (e.g. pool=x_val[:500], pool_labels=y_val[:500]) to FeatureMapsCallback or FeatureMapsWriter and train again"
    )


def _strongest_selection(args):
    """The run and the :class:`reader.StrongestLog` that ``--run`` and ``--layer`` pick (only that layer decoded)."""
    runs = _read(args.logdir, args.run or metadata.DEFAULT_RUN_NAME, [args.layer]) or _load(args.logdir, [args.layer])
    run = _run(runs, args.run)
    if args.layer in run.strongest:
        return run, run.strongest[args.layer]
    run = _read(args.logdir, run.name)[run.name]
    if not run.strongest:
        raise CliError(_no_pool(run))
    available = ", ".join(run.strongest)
    if args.layer in run.layers:
        raise CliError(
            f"layer {args.layer!r} has no strongest inputs (only layers with one or two spatial axes get them); pass --layer with one of: {available}"
        )
    raise CliError(f"unknown layer {args.layer!r} in run {run.name!r}; layers with strongest inputs: {available} (pass --layer NAME)")


def _filters(best, text: Optional[str]) -> Optional[list[int]]:
    if not text:
        return None
    shown = best.info.filters_shown
    chosen = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            value = -1
        if not 0 <= value < shown:
            raise CliError(f"filter {part!r} is not drawn for {best.info.layer}; pass --filters with some of 0..{shown - 1}")
        chosen.append(value)
    if not chosen:
        raise CliError(f"--filters names no filter; pass some of 0..{shown - 1}, e.g. --filters 0,3,5")
    return chosen


def _probe(run, layer, probe: int) -> int:
    if layer.info.kind == metadata.KIND_WEIGHTS:
        return 0
    count = len(layer.info.probe_labels)
    if not 0 <= probe < count:
        raise CliError(f"probe {probe} does not exist; run {run.name!r} has {count} probes: pass --probe 0..{count - 1}")
    return probe


def _index(layer, step: str, choice: str = "--step last or one of") -> int:
    if step == "last":
        return len(layer.steps) - 1
    try:
        return layer.index_of(int(step))
    except (KeyError, ValueError):
        raise CliError(f"{layer.info.step_unit} {step!r} is not logged for {layer.info.layer}; pass {choice}: {_compact(layer.steps)}") from None


def _indices(layer, steps: Optional[str], max_steps: Optional[int]) -> list[int]:
    from . import figures as export  # matplotlib: loaded only by the commands that draw

    if steps:
        return [_index(layer, step.strip(), "--steps with some of") for step in steps.split(",") if step.strip()]
    return export.sample_indices(len(layer.steps), max_steps or len(layer.steps))


def _output(path: str, formats: Sequence[str]) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CliError(f"output directory {folder!r} does not exist; create it first or pass another -o path")
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    if extension not in formats:
        raise CliError(f"cannot write {path!r}: use a file name ending in one of .{', .'.join(formats)}")
    return path


def _figure_formats() -> list[str]:
    from matplotlib.figure import Figure

    return sorted(Figure().canvas.get_supported_filetypes())


def _progress(args, label: str, total: int) -> Progress:
    enabled = args.progress if args.progress is not None else sys.stderr.isatty()
    return Progress(label, total, enabled)


def cmd_list(args) -> None:
    for run in _load(args.logdir).values():
        first = next(iter({**run.layers, **run.weights}.values()), None)
        unit = f", steps count {_plural(first.info.step_unit)}" if first else ""
        print(f"run {run.name}: {len(run.probe_labels)} probes ({' '.join(run.probe_labels)}){unit}")
        rows = [("layer", "class", "output", "filters", "steps")]
        for path, layer in run.layers.items():
            info = layer.info
            shape = "×".join("?" if dim is None else str(dim) for dim in info.map_shape)
            filters = str(info.filters_total) if info.filters_shown == info.filters_total else f"{info.filters_shown}/{info.filters_total}"
            rows.append((path, info.layer_class, shape, filters, f"{_compact(layer.steps)} ({len(layer.steps)})"))
        widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
        for row in rows:
            print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        if run.weights:
            print(f"  weights: {', '.join(run.weights)}")
        if run.strongest:
            best = next(iter(run.strongest.values()))
            print(f"  strongest inputs (top {best.top_k} of a pool of {best.pool_size}): {', '.join(run.strongest)}")


def cmd_figure(args) -> None:
    from . import figures as export  # matplotlib: loaded only by the commands that draw

    output = _output(args.output, _figure_formats())
    run, layer = _selection(args)
    figure = export.layer_figure(run, layer, _index(layer, args.step), _probe(run, layer, args.probe), args.cmap, args.cols)
    figure.savefig(output, dpi=args.dpi)


def cmd_sheet(args) -> None:
    from . import figures as export  # matplotlib: loaded only by the commands that draw

    output = _output(args.output, _figure_formats())
    run, layer = _selection(args)
    indices = _indices(layer, args.steps, args.max_steps)
    probe = _probe(run, layer, args.probe)
    with _progress(args, "sheet", len(indices)) as tick:
        figure = export.contact_sheet(run, layer, indices, probe, args.max_filters, args.cmap, tick)
    figure.savefig(output, dpi=args.dpi)


def cmd_gif(args) -> None:
    from . import figures as export  # matplotlib: loaded only by the commands that draw

    output = _output(args.output, ["gif"])
    run, layer = _selection(args)
    if args.filter is not None and not 0 <= args.filter < layer.info.filters_shown:
        raise CliError(f"filter {args.filter} is not drawn for {layer.info.layer}; pass --filter 0..{layer.info.filters_shown - 1}")
    indices = _indices(layer, args.steps, args.max_steps)
    probe = _probe(run, layer, args.probe)
    with _progress(args, "gif", len(indices)) as tick:
        export.write_gif(run, layer, output, indices, probe, args.filter, args.fps, args.cmap, args.dpi, tick)


def cmd_strongest(args) -> None:
    from . import figures as export  # matplotlib: loaded only by the commands that draw

    output = _output(args.output, _figure_formats())
    run, best = _strongest_selection(args)
    filters = _filters(best, args.filters)
    indices = _indices(best, args.steps, args.max_steps)
    with _progress(args, "strongest", len(indices)) as tick:
        figure = export.strongest_figure(run, best, indices, filters, args.cmap, tick)
    figure.savefig(output, dpi=args.dpi)


def cmd_topk(args) -> None:
    from . import figures as export  # matplotlib: loaded only by the commands that draw

    output = _output(args.output, _figure_formats())
    run, best = _strongest_selection(args)
    filters = _filters(best, args.filters)
    figure = export.topk_figure(run, best, _index(best, args.step), filters, args.cmap)
    figure.savefig(output, dpi=args.dpi)


def cmd_change(args) -> None:
    from . import figures as export  # matplotlib: loaded only by the commands that draw

    output = _output(args.output, _figure_formats())
    runs = _read(args.logdir, args.run or metadata.DEFAULT_RUN_NAME) or _load(args.logdir)
    run = _run(runs, args.run)
    names = [name.strip() for name in args.layers.split(",") if name.strip()] if args.layers else list(run.layers)
    for name in names:
        if name not in run.layers:
            raise CliError(f"unknown layer {name!r} in run {run.name!r}; available: {', '.join(run.layers) or 'none'} (pass --layers A,B)")
    layers = [run.layers[name] for name in names]
    if not any(len(export.changing_series(layer)[0]) for layer in layers):
        raise CliError(
            f"run {run.name!r} has no change between steps for {', '.join(names) or 'any layer'}: it needs two logged steps "
            "and a pool (pass pool= to FeatureMapsCallback) or layers with kernels"
        )
    export.change_figure(run, layers).savefig(output, dpi=args.dpi)


def cmd_convergence(args) -> None:
    from . import convergence as export  # matplotlib: loaded only by the commands that draw

    output = _output(args.output, _figure_formats())
    runs = _read(args.logdir, args.run or metadata.DEFAULT_RUN_NAME) or _load(args.logdir)
    run = _run(runs, args.run)
    logged = {name: best for name, best in run.strongest.items() if best.responses is not None}
    if not logged:
        raise CliError(
            f"run {run.name!r} has no responses to a pool: log it with pool= (FeatureMapsCallback(log_dir, pool=x_val[:500])) "
            "with this version of tb-featuremaps"
        )
    names = [name.strip() for name in args.layers.split(",") if name.strip()] if args.layers else list(logged)
    for name in [*names, *([args.layer] if args.layer else [])]:
        if name not in logged:
            raise CliError(f"layer {name!r} of run {run.name!r} has no responses; layers with them: {', '.join(logged)} (pass --layers A,B)")
    mapped = logged[args.layer or names[-1]]
    layers = [logged[name] for name in names]
    for best in layers:
        found = export.LayerConvergence.of(best, args.threshold)
        print(f"{found.layer}: {export.settled_text(best.info.step_unit, found.settled)}")
    export.convergence_figure(run, layers, mapped, args.threshold).savefig(output, dpi=args.dpi)


def _colormap(name: str) -> str:
    from matplotlib import colormaps

    if name not in colormaps:
        raise argparse.ArgumentTypeError(f"unknown colormap {name!r}; try gray, viridis, magma or inferno")
    return name


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Export the feature maps a FeatureMapsCallback logged as pictures.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("logdir", help="the log_dir given to FeatureMapsCallback")
        sub.set_defaults(handler=handler)
        return sub

    command("list", cmd_list, "list runs and layers with their classes, shapes, filters and steps")
    figure = command("figure", cmd_figure, "one layer's filters for one probe at one step (one subplot per filter)")
    figure.add_argument("--step", default="last", help="a logged step, or 'last' (default)")
    figure.add_argument("--cols", type=_positive, help="subplots per row (default: near-square)")
    sheet = command("sheet", cmd_sheet, "contact sheet: one row per step, one column per filter")
    gif = command("gif", cmd_gif, "animated GIF of a layer's grid, or of one filter, over training")
    gif.add_argument("--filter", type=int, help="animate this filter alone, enlarged")
    gif.add_argument("--fps", type=_positive_float, default=5.0, help="frames per second (default 5)")
    strongest = command("strongest", cmd_strongest, "each filter's strongest pool input over training: one row per filter, one column per step")
    topk = command("topk", cmd_topk, "each filter's top-k pool inputs at one step, labelled with their labels")
    topk.add_argument("--step", default="last", help="a logged step, or 'last' (default)")
    change = command("change", cmd_change, "the fraction of each layer's filters still changing, over training")
    change.add_argument("--layers", help="comma-separated layer paths (default: every layer)")
    change.add_argument("--run", help=f"run name (default: {metadata.DEFAULT_RUN_NAME} or the only run)")
    change.add_argument("--dpi", type=_positive, default=100, help="resolution (default 100)")
    change.add_argument("-o", "--output", required=True, help="output file")
    converged = command(
        "convergence", cmd_convergence, "which layers have settled: each layer's CKA to its latest step, and one layer's step x step map"
    )
    converged.add_argument("--layers", help="comma-separated layer paths (default: every layer with responses)")
    converged.add_argument("--layer", help="the layer of the step x step map (default: the last of --layers)")
    converged.add_argument("--threshold", type=_fraction, default=0.95, help="settled: from where the CKA stays at least this (default 0.95)")
    converged.add_argument("--run", help=f"run name (default: {metadata.DEFAULT_RUN_NAME} or the only run)")
    converged.add_argument("--dpi", type=_positive, default=100, help="resolution (default 100)")
    converged.add_argument("-o", "--output", required=True, help="output file")
    for sub in (strongest, topk):
        sub.add_argument("--filters", help="comma-separated filters, e.g. 0,3,5 (default: every drawn filter)")
    for sub, most in ((sheet, 10), (gif, None), (strongest, 6)):
        steps = sub.add_mutually_exclusive_group()
        steps.add_argument("--steps", help="comma-separated steps, e.g. 0,5,10")
        steps.add_argument("--max-steps", type=_positive, default=most, help=f"at most N steps, evenly spread (default: {most or 'all'})")
        sub.add_argument("--progress", action=argparse.BooleanOptionalAction, help="progress bar on stderr (default: when it is a terminal)")
    sheet.add_argument("--max-filters", type=_positive, default=32, help="columns: the first N filters (default 32)")
    for sub in (figure, sheet, gif, strongest, topk):
        sub.add_argument("--layer", required=True, help="layer path, as 'list' shows it")
        sub.add_argument("--run", help=f"run name (default: {metadata.DEFAULT_RUN_NAME} or the only run)")
        if sub not in (strongest, topk):
            sub.add_argument("--probe", type=int, default=0, help="probe index (default 0)")
            sub.add_argument(
                "--kind",
                choices=(metadata.KIND_ACTIVATIONS, metadata.KIND_WEIGHTS),
                default=metadata.KIND_ACTIVATIONS,
                help="activations (default) or weights",
            )
        sub.add_argument("--cmap", type=_colormap, default="gray", help="matplotlib colormap (default gray)")
        sub.add_argument("--dpi", type=_positive, default=100, help="resolution (default 100)")
        sub.add_argument("-o", "--output", required=True, help="output file")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit status (2 for a usage or logdir problem)."""
    args = build_parser().parse_args(argv)
    _reported.clear()
    try:
        args.handler(args)
    except (CliError, metadata.FormatError) as error:  # FormatError: also a value found unreadable when decoded
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
