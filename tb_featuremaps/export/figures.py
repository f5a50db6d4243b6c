"""Matplotlib pictures of logged feature maps: the per-layer figure, contact sheets and GIFs.

Works on :mod:`.reader` output and builds :class:`matplotlib.figure.Figure`
objects directly (never pyplot), so nothing opens a window and the command line
runs on machines without a display.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.figure import Figure

from ..format import metadata
from ..format.reader import LayerLog, RunLog

Tick = Optional[Callable[[], None]]
"""Called once per step drawn (drives a progress bar)."""

NOTE_COLOR = "0.35"


def sample_indices(count: int, most: int) -> list[int]:
    """At most ``most`` of the positions ``0..count-1``, evenly spread, first and last included."""
    if count <= most:
        return list(range(count))
    return np.linspace(0, count - 1, max(most, 1)).round().astype(int).tolist()


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
    spatial = "×".join(str(dim) for dim in info.output_shape[1:-1]) or "1"
    shown = f"{info.filters_shown} of {info.filters_total}" if info.filters_shown < info.filters_total else str(info.filters_total)
    what = "kernels averaged over input channels" if info.kind == metadata.KIND_WEIGHTS else f"{spatial} maps"
    return f"{info.layer_class}, {shown} filters, {what}; each tile scaled to its own min–max (dark = low)"


def _step(layer: LayerLog, index: int) -> str:
    """The step at position ``index`` as the panel names it: ``epoch 12``, ``batch 300``."""
    return f"{layer.info.step_unit} {int(layer.steps[index])}"


def _title(layer: LayerLog, index: int, labels: Sequence[str], probe: int) -> str:
    if layer.info.kind == metadata.KIND_WEIGHTS:
        return f"Kernels: {layer.info.layer} — {_step(layer, index)}"
    return f"Hidden layer: {layer.info.layer} — {_step(layer, index)} — probe {labels[probe]}"


def _nonfinite_note(layer: LayerLog, index: int, probe: int, filter_index: int) -> str:
    if layer.stats is None:
        return ""
    fraction = float(layer.stats[index, probe, filter_index, metadata.STATS_FIELDS.index("nonfinite")])
    return f"\n{fraction:.0%} NaN/Inf" if fraction > 0 else ""


def layer_figure(run: RunLog, layer: LayerLog, index: int, probe: int = 0, cmap: str = "gray", cols: Optional[int] = None) -> Figure:
    """The blog post's figure: one subplot per filter ("Filter i") of ``layer`` for one probe at step position ``index``.

    Activation figures show the probe input on the left.
    """
    tiles = layer.tiles(index, probe)
    count, tile_height, tile_width = tiles.shape
    cols = cols or math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    panel = min(1.6, 14.0 / cols)
    panel_height = panel * min(max(tile_height / tile_width, 0.25), 2.0)
    with_input = layer.info.kind == metadata.KIND_ACTIVATIONS and bool(run.probe_images)
    input_width = 2.2 if with_input else 0.0
    figure = Figure(figsize=(cols * panel + input_width + 0.4, rows * (panel_height + 0.35) + 1.0), layout="constrained")
    colormap = _cmap(cmap)
    if with_input:
        side, body = figure.subfigures(1, 2, width_ratios=[input_width, cols * panel], wspace=0.02)
        axes = side.add_subplot()
        picture = run.probe_images[probe]
        axes.imshow(picture, cmap=colormap if picture.ndim == 2 else None, interpolation="nearest")
        axes.set_title(f"Input (probe {run.probe_labels[probe]})", fontsize=10)
        axes.set_axis_off()
    else:
        body = figure
    grid = body.subplots(rows, cols, squeeze=False)
    aspect = "equal" if 0.25 <= tile_height / tile_width <= 4 else "auto"
    for filter_index, axes in enumerate(grid.flat):
        axes.set_axis_off()
        if filter_index < count:
            axes.imshow(tiles[filter_index], cmap=colormap, vmin=0, vmax=255, interpolation="nearest", aspect=aspect)
            axes.set_title(f"Filter {filter_index}{_nonfinite_note(layer, index, probe, filter_index)}", fontsize=9)
    figure.suptitle(_title(layer, index, run.probe_labels, probe), fontsize=13, fontweight="bold")
    figure.supxlabel(_describe(layer), fontsize=8, color=NOTE_COLOR)
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
    what = "kernels" if layer.info.kind == metadata.KIND_WEIGHTS else f"probe {run.probe_labels[probe]}"
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
    what = "" if layer.info.kind == metadata.KIND_WEIGHTS else f" — probe {run.probe_labels[probe]}"
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
