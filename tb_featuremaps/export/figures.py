"""Matplotlib pictures of logged feature maps: the per-layer figure, contact sheets, GIFs, and each filter's strongest inputs.

Works on :mod:`.reader` output and builds :class:`matplotlib.figure.Figure`
objects directly (never pyplot), so nothing opens a window and the command line
runs on machines without a display.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np
from matplotlib import patheffects
from matplotlib.animation import PillowWriter
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..format import metadata
from ..format.reader import LayerLog, RunLog, StrongestLog
from ..format.steps import sample_indices as sample_indices  # part of this module's API (export.sample_indices)

Tick = Optional[Callable[[], None]]
"""Called once per step drawn (drives a progress bar)."""

NOTE_COLOR = "0.35"
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = "osD^v<>"
MIN_WIDTH = 6.0
"""Narrowest strongest and topk figure (inches): room for their titles."""
LABEL_OUTLINE = [patheffects.withStroke(linewidth=1.5, foreground="black")]
"""A black outline around the topk figure's yellow labels."""


def mosaic(tiles: np.ndarray, cols: int, gap: int = 1) -> np.ma.MaskedArray:
    """Tiles ``[N, h, w]`` laid out row-major in ``cols`` columns; gaps and empty cells are masked."""
    count, height, width = tiles.shape
    rows = -(-count // cols)
    cells = np.zeros((rows * cols, height + gap, width + gap), np.float32)
    mask = np.ones(cells.shape, bool)
    cells[:count, :height, :width] = tiles
    mask[:count, :height, :width] = False

    def arrange(array: np.ndarray) -> np.ndarray:
        array = array.reshape(rows, cols, height + gap, width + gap).transpose(0, 2, 1, 3)
        return array.reshape(rows * (height + gap), cols * (width + gap))[: rows * (height + gap) - gap, : cols * (width + gap) - gap]

    return np.ma.MaskedArray(arrange(cells), arrange(mask))


def _cmap(name: str):
    """The colormap ``name`` with masked cells (gaps) drawn white."""
    from matplotlib import colormaps

    return colormaps[name].with_extremes(bad="white")


def _describe(layer: LayerLog) -> str:
    info = layer.info
    spatial = "×".join(str(dim) for dim in info.map_shape[:-1]) or "1"
    shown = f"{info.filters_shown} of {info.filters_total}" if info.filters_shown < info.filters_total else str(info.filters_total)
    what = "kernels averaged over input channels" if info.kind == metadata.KIND_WEIGHTS else f"{spatial} maps"
    return f"{info.layer_class}, {shown} filters, {what}; each tile scaled to its own min–max (dark = low)"


def _step(layer: LayerLog, index: int) -> str:
    """The step at position ``index`` as the panel names it: ``epoch 12``, ``batch 300``."""
    return f"{layer.info.step_unit} {int(layer.steps[index])}"


def _probe(run: RunLog, probe: int) -> str:
    """Probe ``probe`` named by its index and its label, distinctly: ``probe 3 (label 7)``."""
    return f"probe {probe} (label {run.probe_labels[probe]})" if probe < len(run.probe_labels) else f"probe {probe}"


def _title(run: RunLog, layer: LayerLog, index: int, probe: int) -> str:
    if layer.info.kind == metadata.KIND_WEIGHTS:
        return f"Kernels: {layer.info.layer} — {_step(layer, index)}"
    return f"Hidden layer: {layer.info.layer} — {_step(layer, index)} — {_probe(run, probe)}"


def _nonfinite_note(stats: Optional[np.ndarray], probe: int, filter_index: int) -> str:
    """The note under a filter's title when some of its values were NaN or ±Inf; ``stats`` those of one step (or None)."""
    if stats is None:
        return ""
    fraction = float(stats[probe, filter_index, metadata.STATS_FIELDS.index("nonfinite")])
    return f"\n{fraction:.0%} NaN/Inf" if fraction > 0 else ""


TITLE_BAND = 0.35
"""Inches above each filter's tile of :func:`layer_figure` for its title (two lines of 9 pt with a NaN note)."""


def layer_figure(run: RunLog, layer: LayerLog, index: int, probe: int = 0, cmap: str = "gray", cols: Optional[int] = None) -> Figure:
    """The blog post's figure: one subplot per filter ("Filter i") of ``layer`` for one probe at step position ``index``.

    Activation figures show the probe input on the left. The subplots are
    placed at fixed positions (in inches, as the figure's size is reckoned):
    a constrained layout of the 65 subplots of a 64-filter layer took a second
    of every save.
    """
    tiles = layer.tiles(index, probe)
    count, tile_height, tile_width = tiles.shape
    cols = cols or math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    panel = min(1.6, 14.0 / cols)
    panel_height = panel * min(max(tile_height / tile_width, 0.25), 2.0)
    with_input = layer.info.kind == metadata.KIND_ACTIVATIONS and bool(run.probe_images)
    input_width = 2.2 if with_input else 0.0
    top, bottom, side, gap = 0.55, 0.45, 0.2, min(0.1, panel * 0.08)
    width, height = cols * panel + input_width + 2 * side, rows * (panel_height + TITLE_BAND) + top + bottom
    figure = Figure(figsize=(width, height))

    def rect(left: float, lower: float, box_width: float, box_height: float) -> list:
        """A rectangle given in inches from the figure's lower left corner, as figure fractions."""
        return [left / width, lower / height, box_width / width, box_height / height]

    colormap = _cmap(cmap)
    if with_input:
        size = input_width - 2 * gap
        grid_middle = bottom + rows * (panel_height + TITLE_BAND) / 2
        axes = figure.add_axes(rect(side, grid_middle - size / 2, size, size))
        picture = run.probe_images[probe]
        axes.imshow(picture, cmap=colormap if picture.ndim == 2 else None, interpolation="nearest")
        axes.set_title(f"Input ({_probe(run, probe)})", fontsize=10, y=1.0)
        axes.set_axis_off()
    aspect = "equal" if 0.25 <= tile_height / tile_width <= 4 else "auto"
    stats = layer.stats_at(index)
    for filter_index in range(rows * cols):
        row, col = divmod(filter_index, cols)
        lower = height - top - (row + 1) * (panel_height + TITLE_BAND)
        axes = figure.add_axes(rect(side + input_width + col * panel + gap / 2, lower + gap / 2, panel - gap, panel_height - gap))
        axes.set_axis_off()
        if filter_index < count:
            axes.imshow(tiles[filter_index], cmap=colormap, vmin=0, vmax=255, interpolation="nearest", aspect=aspect)
            axes.set_title(f"Filter {filter_index}{_nonfinite_note(stats, probe, filter_index)}", fontsize=9, y=1.0, pad=3)
    figure.suptitle(_title(run, layer, index, probe), fontsize=13, fontweight="bold", y=1 - 0.12 / height, va="top")
    figure.supxlabel(_describe(layer), fontsize=8, color=NOTE_COLOR, y=0.15 / height, va="bottom")
    return figure


def contact_sheet(
    run: RunLog, layer: LayerLog, indices: Sequence[int], probe: int = 0, max_filters: int = 32, cmap: str = "gray", tick: Tick = None
) -> Figure:
    """A contact sheet: one row per step position in ``indices``, one column per filter (the first ``max_filters``)."""
    rows = []
    for index in indices:
        rows.append(layer.tiles(index, probe)[:max_filters])
        if tick:
            tick()
    filters, tile_height, tile_width = rows[0].shape
    image = mosaic(np.concatenate(rows), cols=filters, gap=2)
    cell = min(0.9, max(0.35, 12.0 / filters))
    figure = Figure(figsize=(filters * cell + 1.6, len(indices) * cell * tile_height / tile_width + 1.4), layout="constrained")
    axes = figure.add_subplot()
    axes.imshow(image, cmap=_cmap(cmap), vmin=0, vmax=255, interpolation="nearest")
    axes.set_yticks([row * (tile_height + 2) + tile_height / 2 for row in range(len(indices))])
    axes.set_yticklabels([_step(layer, index) for index in indices])
    axes.set_xticks([col * (tile_width + 2) + tile_width / 2 for col in range(filters)])
    axes.set_xticklabels([str(col) for col in range(filters)], fontsize=8)
    axes.xaxis.tick_top()
    axes.tick_params(length=0)
    axes.set_xlabel("filter", color=NOTE_COLOR)
    axes.xaxis.set_label_position("top")
    for spine in axes.spines.values():
        spine.set_visible(False)
    what = "kernels" if layer.info.kind == metadata.KIND_WEIGHTS else _probe(run, probe)
    figure.suptitle(f"{layer.info.layer} over training — {what}", fontsize=13, fontweight="bold")
    figure.supxlabel(_describe(layer), fontsize=8, color=NOTE_COLOR)
    return figure


def write_gif(
    run: RunLog,
    layer: LayerLog,
    path: str,
    indices: Sequence[int],
    probe: int = 0,
    filter_index: Optional[int] = None,
    fps: float = 5.0,
    cmap: str = "gray",
    dpi: int = 100,
    tick: Tick = None,
) -> int:
    """Writes an animated GIF of ``layer``'s grid (or one filter, enlarged) over the step positions ``indices``.

    Each frame carries its step (``epoch 12``) in the title. Returns the number of frames.
    """
    cols = layer.info.layout.cols

    def frame(index: int) -> np.ndarray:
        tiles = layer.tiles(index, probe)
        return mosaic(tiles, cols) if filter_index is None else tiles[filter_index]

    first = frame(indices[0])
    height, width = first.shape
    scale = 4.0 / max(height, width)
    figure = Figure(figsize=(max(width * scale, 3.0) + 0.2, height * scale + 0.5), dpi=dpi, layout="constrained")
    axes = figure.add_subplot()
    axes.set_axis_off()
    picture = axes.imshow(first, cmap=_cmap(cmap), vmin=0, vmax=255, interpolation="nearest")
    name = layer.info.layer if filter_index is None else f"{layer.info.layer}, filter {filter_index}"
    what = "" if layer.info.kind == metadata.KIND_WEIGHTS else f" — {_probe(run, probe)}"
    title = axes.set_title("", fontsize=12, fontweight="bold")
    writer = PillowWriter(fps=fps)
    with writer.saving(figure, path, dpi):
        for index in indices:
            picture.set_data(frame(index))
            title.set_text(f"{name} — {_step(layer, index)}{what}")
            writer.grab_frame()
            if tick:
                tick()
    return len(indices)


def _patch_mosaic(cells: np.ndarray, gap: int = 1):
    """Patches ``[rows, cols, h, w]`` (gray levels) or ``[rows, cols, h, w, 3]`` (RGB) as one picture with ``gap``-pixel gaps.

    Gray: a masked array (gaps masked, drawn white by :func:`_cmap`); RGB: RGBA with transparent gaps.
    """
    rows, cols, height, width = cells.shape[:4]
    color = cells.shape[4:]
    canvas = np.zeros((rows, height + gap, cols, width + gap, *color), np.float32)
    empty = np.ones(canvas.shape[:4], bool)
    canvas[:, :height, :, :width] = cells.transpose(0, 2, 1, 3, *range(4, cells.ndim))
    empty[:, :height, :, :width] = False
    canvas = canvas.reshape(rows * (height + gap), cols * (width + gap), *color)[: rows * (height + gap) - gap, : cols * (width + gap) - gap]
    empty = empty.reshape(rows * (height + gap), cols * (width + gap))[: canvas.shape[0], : canvas.shape[1]]
    if not color:
        return np.ma.MaskedArray(canvas, empty)
    return np.concatenate([canvas / 255.0, (~empty)[..., None].astype(np.float32)], axis=-1)


def _show_patches(axes, picture, cmap: str) -> None:
    if picture.ndim == 2:
        axes.imshow(picture, cmap=_cmap(cmap), vmin=0, vmax=255, interpolation="nearest")
    else:
        axes.imshow(picture, interpolation="nearest")


def _titles(figure: Figure, axes, title: str, subtitle: str, note: str) -> None:
    """A bold title, a subtitle over ``axes`` and a gray note at the bottom (unless empty), wrapped to the figure's width."""
    width = figure.get_figwidth()
    figure.suptitle("\n".join(textwrap.wrap(title, max(30, int(width * 9.5)))), fontsize=12, fontweight="bold")
    axes.set_title("\n".join(textwrap.wrap(subtitle, max(30, int(width * 11)))), fontsize=9)
    if note:
        figure.supxlabel("\n".join(textwrap.wrap(note, max(40, int(width * 14)))), fontsize=8, color=NOTE_COLOR)


def patch_text(best: StrongestLog) -> str:
    """What a patch of ``best`` shows: ``5×5-pixel receptive field`` or ``whole 28×28 input``."""
    height, width = best.patch_size
    field = best.receptive_field
    text = f"{height}×{width}-pixel receptive field" if field is not None else f"whole {height}×{width} input"
    if field is not None and len(field.size) == 2 and tuple(field.size) != (height, width):
        text = f"{'×'.join(map(str, field.size))}-pixel receptive field, clipped to the {height}×{width} input it covers"
    reason = best.info.extra.patch_reason if field is None else ""
    if reason:
        text += f" ({reason})"
    if best.info.reduction != metadata.NO_REDUCTION:
        text += f", drawn {best.info.reduction}"
    return text


def _input_note(best: StrongestLog) -> str:
    low, high = best.info.extra.input_range
    return f"gray levels: the pool's input range {low:.3g} (dark) to {high:.3g} (light)"


def _plural(unit: str) -> str:
    return "batches" if unit == "batch" else f"{unit}s"


def strongest_figure(
    run: RunLog, best: StrongestLog, indices: Sequence[int], filters: Optional[Sequence[int]] = None, cmap: str = "gray", tick: Tick = None
) -> Figure:
    """Zeiler & Fergus' Fig. 4 layout: what each filter responds to most, over training.

    One row per filter (``filters``, default all drawn), one column per step
    position in ``indices``; each cell is that filter's strongest patch (rank 0).
    """
    filters = list(range(best.info.filters_shown)) if filters is None else list(filters)
    columns = []
    for index in indices:
        columns.append(best.patches(index)[filters, 0])
        if tick:
            tick()
    cells = np.stack(columns, axis=1)  # [filters, steps, h, w(, 3)]
    height, width = cells.shape[2:4]
    gap = max(1, round(max(height, width) / 10))
    picture = _patch_mosaic(cells, gap)
    cell = min(0.9, max(0.3, 10.0 / len(indices)), max(0.12, 16.0 / len(filters)))
    figure = Figure(figsize=(max(len(indices) * cell + 2.0, MIN_WIDTH), len(filters) * cell * height / width + 1.8), layout="constrained")
    axes = figure.add_subplot()
    _show_patches(axes, picture, cmap)
    axes.set_xticks([col * (width + gap) + width / 2 for col in range(len(indices))])
    axes.set_xticklabels([_step(best, index) for index in indices], fontsize=8)
    axes.xaxis.tick_top()
    label_every = max(1, math.ceil(len(filters) / 64))
    axes.set_yticks([row * (height + gap) + height / 2 for row in range(0, len(filters), label_every)])
    axes.set_yticklabels([f"filter {filters[row]}" for row in range(0, len(filters), label_every)], fontsize=8)
    axes.tick_params(length=0)
    for spine in axes.spines.values():
        spine.set_visible(False)
    steps = ", ".join(str(int(best.steps[index])) for index in indices) if len(indices) <= 8 else f"{len(indices)} steps"
    _titles(
        figure,
        axes,
        f"{best.info.layer}: the strongest pool input of each filter, over training",
        f"run {run.name} — {_plural(best.info.step_unit)} {steps} — patch: {patch_text(best)}",
        f"{best.info.layer_class}; each cell: the filter's strongest of {best.pool_size} pool inputs at that step, "
        f"the {patch_text(best)} under its largest activation; {_input_note(best)}",
    )
    return figure


def topk_figure(run: RunLog, best: StrongestLog, index: int, filters: Optional[Sequence[int]] = None, cmap: str = "gray") -> Figure:
    """The top-k sheet of a layer at step position ``index``.

    Per filter (``filters``, default all drawn) a block of its k patches, strongest
    first (row-major), each labelled with its pool input's label.
    """
    filters = list(range(best.info.filters_shown)) if filters is None else list(filters)
    patches = best.patches(index)[filters]  # [F, k, h, w(, 3)]
    inputs = best.inputs(index)[filters]
    k, height, width = patches.shape[1:4]
    block_cols = math.ceil(math.sqrt(k))
    block_rows = math.ceil(k / block_cols)
    grid_cols = math.ceil(math.sqrt(len(filters) * (block_rows * height) / (block_cols * width)))
    grid_cols = max(1, min(grid_cols, len(filters)))
    grid_rows = math.ceil(len(filters) / grid_cols)
    inner = max(1, round(max(height, width) / 14))
    block_h, block_w = block_rows * (height + inner) - inner, block_cols * (width + inner) - inner
    gap_x, head = max(2, width // 2), max(3, round(height * 0.6))
    pitch_y, pitch_x = head + block_h, block_w + gap_x
    canvas_h, canvas_w = grid_rows * pitch_y, grid_cols * pitch_x - gap_x
    color = patches.shape[4:]
    canvas = np.zeros((canvas_h, canvas_w, *color), np.float32)
    empty = np.ones((canvas_h, canvas_w), bool)
    origins = []
    for position in range(len(filters)):
        grid_row, grid_col = divmod(position, grid_cols)
        block_top, block_left = grid_row * pitch_y + head, grid_col * pitch_x
        for rank in range(k):
            row, col = divmod(rank, block_cols)
            top, left = block_top + row * (height + inner), block_left + col * (width + inner)
            canvas[top : top + height, left : left + width] = patches[position, rank]
            empty[top : top + height, left : left + width] = False
            origins.append((position, rank, top, left))
    picture = np.ma.MaskedArray(canvas, empty) if not color else np.concatenate([canvas / 255.0, (~empty)[..., None].astype(np.float32)], axis=-1)
    scale = min(0.55 / max(height, width), 15.0 / canvas_w, 20.0 / canvas_h)  # inches per canvas pixel
    figure = Figure(figsize=(max(canvas_w * scale + 0.6, MIN_WIDTH), canvas_h * scale + 1.5), layout="constrained")
    axes = figure.add_subplot()
    _show_patches(axes, picture, cmap)
    axes.set_axis_off()
    patch_points = max(height, width) * scale * 72
    label_size = min(9.0, max(3.0, patch_points * 0.3))
    labels = run.pool.labels if run.pool is not None else []
    for position, rank, top, left in origins:
        found = int(inputs[position, rank])
        text = "?" if found < 0 else (str(labels[found]) if found < len(labels) else f"#{found}")
        axes.text(
            left + width - 0.5,
            top + height - 0.5,
            text,
            ha="right",
            va="bottom",
            fontsize=label_size,
            color="yellow",
            bbox={"facecolor": "black", "alpha": 0.8, "pad": 0.4, "linewidth": 0},
            path_effects=LABEL_OUTLINE,  # readable on white strokes too, where the box is small
        )
    for position, filter_index in enumerate(filters):
        grid_row, grid_col = divmod(position, grid_cols)
        axes.text(
            grid_col * pitch_x + block_w / 2,
            grid_row * pitch_y + head - 1,
            f"filter {filter_index}",
            ha="center",
            va="bottom",
            fontsize=min(10.0, max(4.0, label_size * 1.2)),
        )
    _titles(
        figure,
        axes,
        f"{best.info.layer}: the top {k} pool inputs of each filter — {_step(best, index)}",
        f"run {run.name} — {k} of {best.pool_size} pool inputs per filter — patch: {patch_text(best)}",
        f"{best.info.layer_class}; per filter its {k} strongest pool inputs, strongest first (left to right, top to bottom), "
        f"each the part under its largest activation, labelled with the input's label; {_input_note(best)}",
    )
    return figure


def changing_series(layer: LayerLog) -> tuple[np.ndarray, np.ndarray]:
    """A layer's ``(steps, fraction of filters still changing)`` at the steps where it is known (from its second logged step on)."""
    fractions = np.array([layer.changing(index) for index in range(len(layer.steps))], np.float64)
    known = np.isfinite(fractions)
    return layer.steps[known], fractions[known]


def change_figure(run: RunLog, layers: Sequence[LayerLog]) -> Figure:
    """The fraction of each layer's filters still changing over training, one line per layer (``docs/format.md``, "Change between steps").

    Each line has its own style and marker, and a line the same as an earlier one
    (a max-pooling layer after its convolution) says so in the legend: ``pool1 (same as conv1)``.
    """
    figure = Figure(figsize=(7.5, 4.5), layout="constrained")
    axes = figure.add_subplot()
    drawn: list[tuple[str, np.ndarray, np.ndarray]] = []
    for position, layer in enumerate(layers):
        steps, fractions = changing_series(layer)
        if len(steps):
            style = LINE_STYLES[position % len(LINE_STYLES)]
            marker = MARKERS[position % len(MARKERS)]
            same = [name for name, *line in drawn if np.array_equal(line[0], steps) and np.array_equal(line[1], fractions)]
            label = f"{layer.info.layer} (same as {same[0]})" if same else layer.info.layer
            drawn.append((layer.info.layer, steps, fractions))
            axes.plot(steps, fractions, linestyle=style, marker=marker, markersize=4 + position % 3, markerfacecolor="none", label=label)
    unit = layers[0].info.step_unit if layers else "step"
    axes.set_xlabel(_plural(unit))
    axes.set_ylabel("filters still changing")
    axes.set_ylim(-0.03, 1.03)
    axes.yaxis.set_major_formatter("{x:.0%}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    threshold = f"{metadata.CHANGING_THRESHOLD:.0%}"
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    _titles(
        figure,
        axes,
        f"Filters still changing (by more than {threshold} per logged step) — run {run.name}",
        f"a filter is still changing when its response to the pool (else its kernel) moved more than {threshold} since the previous step",
        "",
    )
    return figure
