"""Loads feature-map logs back into NumPy arrays, reading the event files with :mod:`.eventfile`.

Used by the export command line and the tests::

    runs = reader.load("logs")
    conv = runs["feature_maps"].layers["conv2d"]
    conv.steps               # [S] int
    conv.tiles(-1, probe=3)  # [filters, tile_h, tile_w] uint8 at the last step
    conv.values(-1, probe=3) # the same as float32 values (NaN where not finite)
    conv.stats               # [S, probes, filters, len(STATS_FIELDS)] float32

Event files are read with the project's own framing (lengths checked against the
file before anything is allocated), never with TensorFlow's record reader, which
a corrupt length crashes (see docs/security.md).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
from tensorboard.backend.event_processing import io_wrapper
from tensorboard.compat import tf as tb_tf
from tensorboard.compat.proto import types_pb2
from tensorboard.util import tensor_util

from .. import render
from . import eventfile, metadata


@dataclass
class LayerLog:
    """One layer's grid series (activations or weights) and, for activations, its stats."""

    info: metadata.LayerInfo
    steps: np.ndarray
    wall_times: np.ndarray
    pngs: list  # [step][probe] -> PNG bytes
    stats: Optional[np.ndarray] = None  # [step, probe, filter, field]

    def index_of(self, step: int) -> int:
        """Position of ``step`` in :attr:`steps`; KeyError if it was not logged."""
        found = np.flatnonzero(self.steps == step)
        if not len(found):
            raise KeyError(f"{self.info.step_unit} {step} is not logged for {self.info.layer}; logged: {self.steps.tolist()}")
        return int(found[0])

    def grid(self, index: int, probe: int = 0) -> np.ndarray:
        """The decoded grid image (uint8 ``[H, W]``, or ``[H, W, 2]`` with NaN alpha) at step position ``index``."""
        return render.decode_png(self.pngs[index][probe])

    def _cells(self, index: int, probe: int) -> np.ndarray:
        """The grid cut into its filters' tiles: ``[filters, tile_h, tile_w]``, or ``[..., 2]`` with alpha."""
        image = self.grid(index, probe)
        layout = self.info.layout
        tiles = []
        for filter_index in range(self.info.filters_shown):
            top, left = layout.tile_origin(filter_index)
            tiles.append(image[top : top + layout.tile_height, left : left + layout.tile_width])
        return np.stack(tiles)

    def tiles(self, index: int, probe: int = 0) -> np.ndarray:
        """The filters' tiles at step position ``index``: uint8 ``[filters, tile_h, tile_w]``."""
        cells = self._cells(index, probe)
        return cells[..., 0] if cells.ndim == 4 else cells

    def values(self, index: int, probe: int = 0) -> np.ndarray:
        """The filters' values at step position ``index``, from the gray levels: float32 ``[filters, tile_h, tile_w]``.

        Each tile's levels are mapped back to the range its stats give
        (:func:`metadata.tile_ranges`, :func:`metadata.levels_to_values`), exact to
        half a gray level of that range; NaN where the value was NaN or ±Inf.
        """
        if self.stats is None:
            raise ValueError(
                f"{self.info.kind}/{self.info.layer} has no stats, so its gray levels cannot be mapped back to values; use tiles() for the levels"
            )
        cells = self._cells(index, probe)
        low, high = metadata.tile_ranges(self.info.normalization, self.stats[index])
        values = metadata.levels_to_values(cells[..., 0] if cells.ndim == 4 else cells, low[probe], high[probe])
        if cells.ndim == 4:
            values[cells[..., 1] == 0] = np.nan
        return values


@dataclass
class RunLog:
    """Everything one run directory holds in the feature-maps format."""

    name: str
    layers: dict = field(default_factory=dict)  # layer path -> LayerLog (activations), model order
    weights: dict = field(default_factory=dict)  # layer path -> LayerLog (kernels)
    probe_images: list = field(default_factory=list)  # decoded probe pictures
    probe_labels: list = field(default_factory=list)


@dataclass
class _Series:
    """One tag's metadata and its values by step; a step written again keeps its last value."""

    data: dict  # the parsed plugin content
    info: Optional[metadata.LayerInfo] = None  # grid series only
    values: dict = field(default_factory=dict)  # step -> (wall time, TensorProto)

    def by_step(self) -> tuple[np.ndarray, np.ndarray, list]:
        """Steps, wall times and values, in step order."""
        steps = sorted(self.values)
        wall_times = [self.values[step][0] for step in steps]
        return np.array(steps, np.int64), np.array(wall_times, np.float64), [self.values[step][1] for step in steps]


def _run_files(logdir: str, run: Optional[str]) -> Iterator[tuple[str, list[str]]]:
    """``(run name, event files in name order)`` of each directory under ``logdir``, named as TensorBoard names runs."""
    if run is not None:
        directory = logdir if run == "." else os.path.join(logdir, run)
        directories = [directory] if tb_tf.io.gfile.isdir(directory) else []
    else:
        directories = io_wrapper.GetLogdirSubdirectories(logdir)
    for directory in directories:
        files = sorted(path for path in io_wrapper.ListDirectoryAbsolute(directory) if io_wrapper.IsSummaryEventsFile(path))
        if files:
            yield run if run is not None else os.path.relpath(directory, logdir), files


def _read_series(files: list[str], layers: Optional[Collection[str]]) -> Optional[dict[str, _Series]]:
    """The ``feature_maps`` series of one run's event files kept for ``layers`` (and the probes); None if it has none at all."""
    series: dict[str, Optional[_Series]] = {}  # tag -> its series, None where its values are not kept
    ours = False
    for path in files:
        for event in eventfile.read_events(path):
            for value in event.summary.value:
                if value.tag not in series:
                    if not value.HasField("metadata"):
                        continue
                    plugin_data = value.metadata.plugin_data
                    mine = plugin_data.plugin_name == metadata.PLUGIN_NAME
                    ours |= mine
                    series[value.tag] = _new_series(value.tag, plugin_data.content, layers) if mine else None
                found = series[value.tag]
                if found is not None:
                    found.values[event.step] = (event.wall_time, value.tensor)
    return {tag: found for tag, found in series.items() if found is not None} if ours else None


def _new_series(tag: str, content: bytes, layers: Optional[Collection[str]]) -> Optional[_Series]:
    found = metadata.classify(tag, content)  # checked whichever layers are asked for
    if found is None:
        return None  # a kind this version does not know: skipped, as in the plugin's listing
    if found.kind == metadata.KIND_PROBES or layers is None or found.layer in layers:
        return _Series(found.content, found.info)
    return None


def _pngs(tag: str, step: int, tensor) -> list:
    """The PNGs of a ``[width, height, png...]`` value."""
    if tensor.dtype != types_pb2.DT_STRING or len(tensor.string_val) <= metadata.IMAGE_HEADER:
        raise metadata.FormatError(f"feature_maps series {tag!r} at step {step} is not a [width, height, png, ...] string tensor; rewrite the log")
    return metadata.pngs_of(tensor.string_val)


def _layer_log(tag: str, grids: _Series, stats: Optional[_Series]) -> LayerLog:
    info = grids.info
    steps, wall_times, tensors = grids.by_step()
    log = LayerLog(info, steps, wall_times, [_pngs(tag, step, tensor) for step, tensor in zip(steps.tolist(), tensors)])
    if stats is not None:
        shape = (len(info.probe_labels), info.filters_shown, len(metadata.STATS_FIELDS))
        log.stats = np.full((len(steps), *shape), np.nan, np.float32)  # NaN at a step logged without stats
        for position, step in enumerate(steps.tolist()):
            if step in stats.values:
                array = metadata.align_stats(tensor_util.make_ndarray(stats.values[step][1]), stats.data.get("fields", metadata.STATS_FIELDS))
                if array.shape != shape:
                    raise metadata.FormatError(f"stats of {info.layer!r} at step {step} have shape {array.shape}, not {shape}; rewrite the log")
                log.stats[position] = array
    return log


def load(logdir: Union[str, os.PathLike], run: Optional[str] = None, layers: Optional[Collection[str]] = None) -> dict[str, RunLog]:
    """Reads the runs under ``logdir`` that hold feature-map series (every step).

    Runs are named as TensorBoard names them: the directory's path relative to
    ``logdir`` (``"."`` for ``logdir`` itself). Event files are read in name
    order, each up to its first torn or corrupt record; a series keeps the first
    metadata it was written with; a step written more than once (two trainings
    in one run directory) keeps the value written last.

    Args:
        logdir: The ``log_dir`` given to the callback (local or remote).
        run: Read only this run (no other directory is opened).
        layers: Keep only these layer paths (activations and weights); the other
            layers' values are not decoded. A run is listed whichever layers it has.

    Raises:
        metadata.FormatError: for a series this version cannot read.
    """
    runs: dict[str, RunLog] = {}
    for name, files in _run_files(os.fspath(logdir), run):
        series = _read_series(files, layers)
        if series is None:
            continue
        log = runs[name] = RunLog(name)
        stats = {found.data["layer"]: found for found in series.values() if found.data["kind"] == metadata.KIND_STATS}
        grids = []
        for tag, found in series.items():
            if found.data["kind"] == metadata.KIND_PROBES:
                log.probe_labels = list(found.data["labels"])
                steps, _, tensors = found.by_step()
                log.probe_images = [render.decode_png(png) for png in _pngs(tag, int(steps[-1]), tensors[-1])]
            elif found.info is not None:
                activations = found.info.kind == metadata.KIND_ACTIVATIONS
                grids.append(_layer_log(tag, found, stats.get(found.info.layer) if activations else None))
        for layer_log in sorted(grids, key=lambda item: item.info.index):
            table = log.layers if layer_log.info.kind == metadata.KIND_ACTIVATIONS else log.weights
            table[layer_log.info.layer] = layer_log
    return dict(sorted(runs.items()))
