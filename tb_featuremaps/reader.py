"""Loads feature-map logs back into NumPy arrays, through TensorBoard's own event loading.

Used by the export command line and the tests::

    runs = reader.load("logs")
    conv = runs["feature_maps"].layers["conv2d"]
    conv.steps              # [S] int
    conv.tiles(-1, probe=3) # [filters, tile_h, tile_w] uint8 at the last step
    conv.stats              # [S, probes, filters, len(STATS_FIELDS)] float32
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.util import tensor_util

from . import grid, metadata


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
            raise KeyError(f"step {step} is not logged for {self.info.layer}; logged: {self.steps.tolist()}")
        return int(found[0])

    def grid(self, index: int, probe: int = 0) -> np.ndarray:
        """The decoded grid image (uint8 ``[H, W]``, or ``[H, W, 2]`` with NaN alpha) at step position ``index``."""
        return grid.decode_png(self.pngs[index][probe])

    def tiles(self, index: int, probe: int = 0) -> np.ndarray:
        """The filters' tiles at step position ``index``: uint8 ``[filters, tile_h, tile_w]``."""
        image = self.grid(index, probe)
        if image.ndim == 3:
            image = image[..., 0]
        layout = self.info.layout
        tiles = []
        for filter_index in range(self.info.filters_shown):
            row, col = divmod(filter_index, layout.cols)
            top, left = row * (layout.tile_height + layout.gutter), col * (layout.tile_width + layout.gutter)
            tiles.append(image[top : top + layout.tile_height, left : left + layout.tile_width])
        return np.stack(tiles)


@dataclass
class RunLog:
    """Everything one run directory holds in the feature-maps format."""

    name: str
    layers: dict = field(default_factory=dict)  # layer path -> LayerLog (activations), model order
    weights: dict = field(default_factory=dict)  # layer path -> LayerLog (kernels)
    probe_images: list = field(default_factory=list)  # decoded probe pictures
    probe_labels: list = field(default_factory=list)


def _values(multiplexer, run: str, tag: str):
    events = multiplexer.Tensors(run, tag)
    steps = np.array([event.step for event in events], dtype=np.int64)
    wall_times = np.array([event.wall_time for event in events], dtype=np.float64)
    return steps, wall_times, [tensor_util.make_ndarray(event.tensor_proto) for event in events]


def load(logdir: str) -> dict[str, RunLog]:
    """Reads every run under ``logdir`` that holds feature-map series (all steps kept)."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    runs: dict[str, RunLog] = {}
    for run, contents in sorted(multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME).items()):
        log = runs[run] = RunLog(run)
        stats = {}
        grids = []
        for tag, content in contents.items():
            data = metadata.parse_content(content)
            steps, wall_times, values = _values(multiplexer, run, tag)
            if data["kind"] == metadata.KIND_PROBES:
                log.probe_labels = list(data["labels"])
                log.probe_images = [grid.decode_png(png) for png in values[-1][2:]]
            elif data["kind"] == metadata.KIND_STATS:
                stats[data["layer"]] = np.stack(values) if values else None
            elif data["kind"] in metadata.GRID_KINDS:  # other kinds are skipped, as in the plugin's listing
                info = metadata.LayerInfo.from_json(data)
                grids.append(LayerLog(info, steps, wall_times, [list(value[2:]) for value in values]))
        for layer_log in sorted(grids, key=lambda item: item.info.index):
            layer = layer_log.info.layer
            if layer_log.info.kind == metadata.KIND_ACTIVATIONS:
                layer_log.stats = stats.get(layer)
                log.layers[layer] = layer_log
            else:
                log.weights[layer] = layer_log
    return runs
