"""The ``runs`` listing: every run's probes and logged layers, from the series' metadata."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from tensorboard import context as tb_context
from tensorboard import errors
from tensorboard.data import provider

from .. import metadata
from .cache import BudgetCache
from .series import SeriesReader, Version, version_of

_HIDDEN = ("version", "kind", "extra")
"""Content fields of a grid series that the listing leaves out."""

WEIGHTS_FIELDS = ("tile_height", "tile_width", "rows", "cols", "gutter", "filters_shown", "filters_total", "reduction")
"""Content fields of a ``weights`` series that a layer entry carries."""

_EXTENTS_BUDGET = 10_000
"""Most (run, version) step extents and probe sizes remembered."""

_LISTERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="feature_maps_listing")
"""Runs the listing's provider calls side by side: with the Rust data server each is a round trip of tens
of milliseconds, and a run new to the listing costs four (100 new runs: 9 s one after another)."""


def _grid_info(tag: str, content: bytes) -> Optional[metadata.LayerInfo]:
    """The layer of a grid series, or None for other series and unreadable or inconsistent content."""
    try:
        info = metadata.parse_layer_info(content)
    except (KeyError, TypeError, ValueError):  # metadata.FormatError is a ValueError
        return None
    if info is None or not isinstance(info.layer, str) or tag != metadata.tag_for(info.kind, info.layer):
        return None
    return info


class Catalog:
    """Builds the ``runs`` listing; thread-safe."""

    def __init__(self, reader: SeriesReader):
        self._reader = reader
        self._memo = BudgetCache(_EXTENTS_BUDGET)

    def runs(self, ctx: tb_context.RequestContext, eid: str) -> dict[str, Any]:
        """``{"runs": [...]}`` as described in docs/http-api.md, runs sorted by name."""
        # Both listings at once, then every run's reads at once (see _LISTERS).
        tensors = _LISTERS.submit(self._reader.tensor_series, ctx, eid)
        blobs = self._reader.blob_series(ctx, eid)
        tensors = tensors.result()
        return {"runs": list(_LISTERS.map(lambda run: self._run(ctx, eid, run, blobs[run], tensors.get(run, {})), sorted(blobs)))}

    def _run(self, ctx: tb_context.RequestContext, eid: str, run: str, series: dict, tensors: dict) -> dict[str, Any]:
        layers, weights = [], {}
        for tag, time_series in series.items():
            info = _grid_info(tag, time_series.plugin_content)
            if info is None:
                continue
            if info.kind == metadata.KIND_ACTIVATIONS:
                layers.append((info, time_series))
            else:
                weights[info.layer] = info
        layers.sort(key=lambda item: (item[0].index, item[0].layer))
        probes = series.get(metadata.PROBES_TAG)
        return {
            "run": run,
            "probes": self._probes(ctx, eid, run, probes) if probes is not None else None,
            "layers": [self._layer(ctx, eid, run, info, time_series, weights.get(info.layer), tensors) for info, time_series in layers],
        }

    def _layer(
        self,
        ctx: tb_context.RequestContext,
        eid: str,
        run: str,
        info: metadata.LayerInfo,
        series: provider.BlobSequenceTimeSeries,
        weights: Optional[metadata.LayerInfo],
        tensors: dict,
    ) -> dict[str, Any]:
        entry = {key: value for key, value in info.to_json().items() if key not in _HIDDEN}
        count, first = self._extent(ctx, eid, run, metadata.tag_for(info.kind, info.layer), version_of(series))
        weights_json = weights.to_json() if weights is not None else None
        entry.update(
            step_count=count,
            first_step=first,
            last_step=series.max_step,
            weights={key: weights_json[key] for key in WEIGHTS_FIELDS} if weights_json is not None else None,
            has_stats=metadata.tag_for(metadata.KIND_STATS, info.layer) in tensors,
        )
        return entry

    def _extent(self, ctx: tb_context.RequestContext, eid: str, run: str, tag: str, version: Version) -> tuple[int, Optional[int]]:
        """Step count and first step of the run's layers whose series end at ``version``.

        The callback writes every layer at every step, so the layers of a run that
        share a last step and time share their steps: one series is read per
        (run, version), not one per layer.
        """
        key = ("extent", eid, run, version)
        extent = self._memo.get(key)
        if extent is None:
            try:
                steps = self._reader.timeline(ctx, eid, run, tag, version).steps
            except errors.NotFoundError:  # unloaded since it was listed
                return 0, None
            extent = (len(steps), steps[0] if steps else None)
            self._memo.put(key, extent, 1)
        return extent

    def _probes(self, ctx: tb_context.RequestContext, eid: str, run: str, series: provider.BlobSequenceTimeSeries) -> Optional[dict[str, Any]]:
        try:
            content = metadata.parse_content(series.plugin_content)
        except (TypeError, ValueError):
            return None
        labels = content.get("labels", [])
        key = ("probes", eid, run, version_of(series))
        size = self._memo.get(key)
        if size is None:
            try:
                timeline = self._reader.timeline(ctx, eid, run, metadata.PROBES_TAG, version_of(series))
                last = timeline.keys[-1] if timeline.keys else ()
                if len(last) < 2:
                    return None
                size = (len(last) - 2, *(_decimal(self._reader.blob(ctx, blob_key)) for blob_key in last[:2]))
            except errors.NotFoundError:  # unloaded since it was listed
                return None
            self._memo.put(key, size, 1)
        count, width, height = size
        return {"count": count, "labels": labels if isinstance(labels, list) else [], "width": width, "height": height}


def _decimal(blob: bytes) -> Optional[int]:
    """A ``width``/``height`` entry of an image tensor, or None if it is not a decimal number."""
    text = blob.decode("ascii", "replace")
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None
