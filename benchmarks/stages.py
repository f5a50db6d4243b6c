"""One log event of the callback, stage by stage, timed by calling the same functions it calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import keras
import numpy as np

from tb_featuremaps import grid, metadata
from tb_featuremaps.callback import layer_info
from tb_featuremaps.extractor import Extractor, SelectedLayer, kernel_maps, select_layers
from tb_featuremaps.summary import SummaryWriter

STAGES = ("forward", "kernels", "stats", "normalise_tile", "png", "write")


class StagedEvent:
    """The callback's per-event work on ``model`` with the default settings, with a clock per stage."""

    def __init__(self, model: keras.Model, probes: list, labels: Sequence[str], run_dir: str, max_filters: int = 128, max_tile_size: int = 64):
        self.extractor = Extractor(model, select_layers(model, None))
        self.probes, self.labels = probes, list(labels)
        self.writer = SummaryWriter(run_dir)
        self.max_filters, self.max_tile_size = max_filters, max_tile_size
        self._infos: dict[str, metadata.LayerInfo] = {}
        self._clock: dict[str, float] = {}

    def _timed(self, stage: str, function, *args):
        started = time.perf_counter()
        result = function(*args)
        self._clock[stage] += (time.perf_counter() - started) * 1000.0
        return result

    def run(self, step: int) -> dict[str, float]:
        """Logs ``step``; returns milliseconds per stage."""
        self._clock = dict.fromkeys(STAGES, 0.0)
        outputs = self._timed("forward", self.extractor, self.probes)
        for item in self.extractor.layers:
            self._layer(step, metadata.KIND_ACTIVATIONS, item, outputs[item.path], self.labels, item.channels_first)
            kernel = self._timed("kernels", kernel_maps, item.layer)
            if kernel is not None:
                self._layer(step, metadata.KIND_WEIGHTS, item, kernel, ["kernel"], False)
        self._timed("write", self.writer.flush)
        return dict(self._clock)

    def _layer(self, step: int, kind: str, item: SelectedLayer, values: np.ndarray, labels: list, channels_first: bool) -> None:
        drawn = self._timed("stats", grid.draw, values, channels_first, self.max_filters, self.max_tile_size)
        key = metadata.tag_for(kind, item.path)
        if key not in self._infos:
            self._infos[key] = layer_info(kind, item, drawn, labels, "epoch")
        info = self._infos[key]
        grids, masks = self._timed("normalise_tile", grid.gray_levels, drawn, info.layout)
        pngs = self._timed("png", grid.encode_all, grids, masks)
        activations = kind == metadata.KIND_ACTIVATIONS
        health = grid.filter_health(drawn.stats) if activations else None
        self._timed("write", self.writer.write_layer, step, info, pngs, drawn.stats if activations else None, True, health)

    def close(self) -> None:
        self.writer.close()


def time_stages(model: keras.Model, probes: list, labels: Sequence[str], run_dir: str, events: int) -> dict[str, dict]:
    """Median milliseconds per stage over ``events`` log events (after one warm-up event)."""
    staged = StagedEvent(model, probes, labels, run_dir)
    try:
        staged.run(0)
        runs = [staged.run(step) for step in range(1, events + 1)]
    finally:
        staged.close()
    medians = {stage: statistics.median(run[stage] for run in runs) for stage in STAGES}
    medians["total"] = statistics.median(sum(run.values()) for run in runs)
    return {"ms": medians, "events": events, "layers": len(staged.extractor.layers)}
