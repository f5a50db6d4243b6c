"""The ``runs`` listing: every run's probes and logged layers, from the series' metadata.

A run or layer whose data cannot be read is left out and reported in ``errors``
instead; it never fails the listing of the others.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional

from tensorboard import context as tb_context
from tensorboard import errors
from tensorboard.data import provider

from ..format import kinds, metadata
from .cache import BudgetCache
from .series import FRESH_SECONDS, SeriesReader, SingleFlight, UnreadableError, Version, needs_escaping, version_of

logger = logging.getLogger(__name__)

_HIDDEN = ("version", "kind", "extra")
"""Content fields of a grid series that the listing leaves out."""

_EXTENTS_BUDGET = 10_000
"""Most (run, version) step extents, probe sizes and read checks remembered."""

_REASON_LENGTH = 160
"""Longest error message quoted as the reason in ``errors``."""

_LISTERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="feature_maps_listing")
"""Runs the listing's provider calls side by side: with the Rust data server each is a round trip of tens
of milliseconds, and a run new to the listing costs four (100 new runs: 9 s one after another)."""

LISTING_SHARE = 5.0
"""A listing that took ``t`` seconds answers for ``LISTING_SHARE * t`` seconds (at least :data:`FRESH_SECONDS`, at most
:data:`LONGEST_FRESH_SECONDS`) before a new one is begun: a panel polling ``runs`` keeps TensorBoard listing at most a
sixth of the time (the Python loader takes 0.75 s a listing of 10,000 steps x 20 layers)."""

LONGEST_FRESH_SECONDS = 5.0
"""The longest a listing answers before a new one is begun, however long it took (one made while TensorBoard was busy
loading can take seconds): TensorBoard's default reload interval."""

STALE_SECONDS = 30.0
"""How old a listing may be and still answer a request while a new one is made in the background: a panel
polling every 3 s gets the listing of its previous poll at once (on a 10,000-step run the Python loader takes
most of a second to list); an older one is listed again before the answer."""

PREWARM_RUNS = 4
"""Runs (the newest, by their series' last wall time) whose layers' series are read in the background after a listing."""

PREWARM_KINDS = kinds.written_with(metadata.KIND_ACTIVATIONS)
"""Tensor series read in the background besides the grids' timelines: those written with the activations (the stats, which
the heat strip and the detail view show, and the change)."""

_BACKGROUND = ThreadPoolExecutor(max_workers=2, thread_name_prefix="feature_maps_background")
"""Makes listings in the background and reads the newest runs' series ahead of their first request."""


def _grid_info(tag: str, content: bytes) -> Optional[metadata.LayerInfo]:
    """The layer of a grid series, or None for other series and unreadable or inconsistent content."""
    try:
        series = metadata.classify(tag, content)
    except metadata.FormatError:
        return None
    return series.info if series is not None else None


class Catalog:
    """Builds the ``runs`` listing; thread-safe.

    A listing answers the requests of the next :data:`~.series.FRESH_SECONDS` too:
    TensorBoard reloads a logdir only every few seconds (``--reload_interval``, 5 s
    by default), so a younger listing is as current as a new one, and on a long run
    the Python loader spends most of a second on each (it walks every stored event
    for each series' last step).
    """

    def __init__(self, reader: SeriesReader, prewarm: bool = True):
        self._reader = reader
        self._memo = BudgetCache(_EXTENTS_BUDGET)
        self._listings: dict[str, tuple[float, float, dict[str, Any]]] = {}  # eid -> (when it was begun, seconds it took, listing)
        self._lock = threading.Lock()
        self._flights = SingleFlight()
        self._refreshing: set[str] = set()  # eids listed in the background now
        self._prewarm = prewarm
        self._warming: set[str] = set()  # eids whose series are read in the background now
        self._seen: dict[str, dict[tuple[str, str], Version]] = {}  # eid -> versions of the series to read ahead at the last listing

    def runs(self, ctx: tb_context.RequestContext, eid: str) -> dict[str, Any]:
        """``{"runs": [...], "errors": [...], "kinds": {...}}`` as described in docs/http-api.md, runs sorted by name.

        A listing younger than :data:`FRESH_SECONDS` (or :data:`LISTING_SHARE` times
        what it took) answers as it is; one younger than :data:`STALE_SECONDS` answers
        too while a new one is made in the background; an older one, or none, waits for
        a new listing (one at a time: requests arriving meanwhile wait for the same one).
        A listing without layers (TensorBoard still loading the first) answers only
        within :data:`FRESH_SECONDS`, so that the first data is shown as soon as it is loaded.
        """
        with self._lock:
            cached = self._listings.get(eid)
        if cached is not None:
            begun, took, listing = cached
            age = time.monotonic() - begun
            if age < FRESH_SECONDS:
                return listing
            if not any(run["layers"] for run in listing["runs"]):
                return self._flights.run(eid, lambda: self._relist(ctx, eid))
            if age < min(LISTING_SHARE * took, LONGEST_FRESH_SECONDS):
                return listing
            if age < STALE_SECONDS:
                self._refresh(ctx, eid)
                return listing
        return self._flights.run(eid, lambda: self._relist(ctx, eid))

    def _relist(self, ctx: tb_context.RequestContext, eid: str) -> dict[str, Any]:
        begun = time.monotonic()
        listing = self._list(ctx, eid)
        with self._lock:
            if eid not in self._listings or self._listings[eid][0] < begun:
                self._listings[eid] = (begun, time.monotonic() - begun, listing)
        return listing

    def _refresh(self, ctx: tb_context.RequestContext, eid: str) -> None:
        """Lists again in the background unless that is under way."""
        with self._lock:
            if eid in self._refreshing:
                return
            self._refreshing.add(eid)

        def refresh() -> None:
            try:
                self._flights.run(eid, lambda: self._relist(ctx, eid))
            except Exception:  # the next request lists again itself
                logger.debug("listing in the background failed", exc_info=True)
            finally:
                with self._lock:
                    self._refreshing.discard(eid)

        _BACKGROUND.submit(refresh)

    def _list(self, ctx: tb_context.RequestContext, eid: str) -> dict[str, Any]:
        # Both listings at once, then every run's reads at once (see _LISTERS).
        tensors = _LISTERS.submit(self._reader.tensor_series, ctx, eid)
        blobs = self._reader.blob_series(ctx, eid)
        tensors = tensors.result()
        runs, problems = [], []
        for entry, run_problems in _LISTERS.map(lambda run: self._run(ctx, eid, run, blobs[run], tensors.get(run, {})), sorted(blobs)):
            if entry is not None:
                runs.append(entry)
            problems.extend(run_problems)
        if self._prewarm:
            self._warm(ctx, eid, blobs, tensors)
        return {"runs": runs, "errors": problems, "kinds": kinds.describe()}

    # Reading ahead -------------------------------------------------------------------------------

    def _warm(self, ctx: tb_context.RequestContext, eid: str, blobs: dict, tensors: dict) -> None:
        """Reads the grids' timelines and the stats of the :data:`PREWARM_RUNS` newest runs in the background.

        Only series that the listing before showed at the same version (not growing
        while TensorBoard loads them, or written to right now) are read. One round per
        experiment at a time, never blocking the listing; a read is kept only where the
        caches have room without evicting (:meth:`SeriesReader.timeline`), and the round
        stops at the first that does not fit. A request for a series being read waits
        for that read (:class:`~.series.SingleFlight`).
        """
        jobs = _warm_jobs(blobs, tensors)
        versions = {(run, tag): version_of(series) for run, tag, series, _, _ in jobs}
        with self._lock:
            seen, self._seen[eid] = self._seen.get(eid, {}), versions
            jobs = [job for job in jobs if seen.get(job[:2]) == versions[job[:2]]]
            if not jobs or eid in self._warming:
                return
            self._warming.add(eid)
        try:
            _BACKGROUND.submit(self._warm_round, ctx, eid, jobs)
        except RuntimeError:  # shutting down
            with self._lock:
                self._warming.discard(eid)

    def _warm_round(self, ctx: tb_context.RequestContext, eid: str, jobs: list) -> None:
        """Reads the first of ``jobs``, then queues the rest as a new task: TensorBoard, when it exits, waits for
        the task running, not for the whole round."""
        going = False
        try:
            run, tag, series, layer, kind = jobs[0]
            try:
                if kind is None:
                    kept = self._reader.warm_timeline(ctx, eid, run, tag, version_of(series))
                else:
                    kept = self._reader.warm_stats(ctx, eid, run, layer, kind, series)
            except Exception:  # a request reading the series reads it again itself
                logger.debug("reading %s of %s ahead failed", tag, run, exc_info=True)
                kept = True
            if kept and len(jobs) > 1:
                _BACKGROUND.submit(self._warm_round, ctx, eid, jobs[1:])
                going = True
        except RuntimeError:  # shutting down
            pass
        finally:
            if not going:
                with self._lock:
                    self._warming.discard(eid)

    def _run(self, ctx: tb_context.RequestContext, eid: str, run: str, series: dict, tensors: dict) -> tuple[Optional[dict[str, Any]], list[dict]]:
        """The run's entry (None if none of it can be read) and what of it could not be read."""
        try:
            return self._entry(ctx, eid, run, series, tensors)
        except errors.PublicError as error:
            return None, [_problem(run, None, error)]

    def _entry(self, ctx: tb_context.RequestContext, eid: str, run: str, series: dict, tensors: dict) -> tuple[dict[str, Any], list[dict]]:
        layers, others = [], {}  # others: (kind, layer) -> the layer's other grid series (weights, strongest)
        for tag, time_series in series.items():
            info = _grid_info(tag, time_series.plugin_content)
            if info is None:
                continue
            if info.kind == metadata.KIND_ACTIVATIONS:
                layers.append((info, time_series))
            else:
                others[info.kind, info.layer] = info
        layers.sort(key=lambda item: (item[0].index, item[0].layer))
        probes = series.get(metadata.PROBES_TAG)
        readable = [(metadata.PROBES_TAG, probes)] if probes is not None else []
        readable += [(metadata.tag_for(info.kind, info.layer), time_series) for info, time_series in layers]
        if needs_escaping(run) and readable:  # one series shows whether the data server reads the run's name back
            self._check(ctx, eid, run, *readable[0])
        problems = []
        entries = []
        for info, time_series in layers:
            try:
                entries.append(self._layer(ctx, eid, run, info, time_series, others, tensors))
            except errors.PublicError as error:
                problems.append(_problem(run, metadata.tag_for(info.kind, info.layer), error))
        pictures = {}
        for tag in (metadata.PROBES_TAG, metadata.POOL_TAG):
            try:
                pictures[tag] = self._probes(ctx, eid, run, tag, series[tag]) if tag in series else None
            except errors.PublicError as error:
                pictures[tag] = None
                problems.append(_problem(run, tag, error))
        return {"run": run, "probes": pictures[metadata.PROBES_TAG], "pool": pictures[metadata.POOL_TAG], "layers": entries}, problems

    def _check(self, ctx: tb_context.RequestContext, eid: str, run: str, tag: str, series: provider.BlobSequenceTimeSeries) -> None:
        """Reads one blob of the series (its last step's first); UnreadableError if the provider cannot.

        Only for names that need escaping in JSON: TensorBoard's data server fails to
        read those back, and checking every series would cost a round trip each.
        """
        key = ("check", eid, run, tag, version_of(series))
        reason = self._memo.get(key)
        if reason is None:
            try:
                last = self._reader.timeline(ctx, eid, run, tag, version_of(series)).last_keys()
                if last:
                    self._reader.blob(ctx, run, tag, last[0])
                reason = ""
            except UnreadableError as error:
                reason = error.reason
            except errors.NotFoundError:  # unloaded since it was listed
                return
            self._memo.put(key, reason, 1)
        if reason:
            raise UnreadableError(run, tag, reason)

    def _layer(
        self,
        ctx: tb_context.RequestContext,
        eid: str,
        run: str,
        info: metadata.LayerInfo,
        series: provider.BlobSequenceTimeSeries,
        others: dict,
        tensors: dict,
    ) -> dict[str, Any]:
        tag = metadata.tag_for(info.kind, info.layer)
        if needs_escaping(tag):
            self._check(ctx, eid, run, tag, series)
        entry = {key: value for key, value in info.to_json().items() if key not in _HIDDEN}
        count, first = self._extent(ctx, eid, run, tag, version_of(series))
        entry.update(step_count=count, first_step=first, last_step=series.max_step)
        entry.update({kind: _grid_entry(others.get((kind, info.layer))) for kind in metadata.GRID_KINDS if kind != info.kind})
        entry.update({f"has_{kind}": kinds.KINDS[kind].tag(info.layer) in tensors for kind in kinds.written_with(info.kind)})
        entry["has_responses"] = kinds.responses.KIND.tag(info.layer) in tensors  # written with strongest; the convergence routes
        entry["map_shape"] = info.map_shape
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

    def _probes(
        self, ctx: tb_context.RequestContext, eid: str, run: str, tag: str, series: provider.BlobSequenceTimeSeries
    ) -> Optional[dict[str, Any]]:
        """``{"count", "labels", "width", "height", "input_shape"}`` of the ``probes`` or ``pool`` pictures (their last step)."""
        try:
            content = metadata.parse_content(series.plugin_content)
        except (TypeError, ValueError):
            return None
        labels = content.get("labels", [])
        key = (tag, eid, run, version_of(series))
        size = self._memo.get(key)
        if size is None:
            try:
                timeline = self._reader.timeline(ctx, eid, run, tag, version_of(series))
                last = timeline.last_keys()
                if len(last) < 2:
                    return None
                size = (
                    len(metadata.pngs_of(last)),
                    *(_decimal(self._reader.blob(ctx, run, tag, blob_key)) for blob_key in last[: metadata.IMAGE_HEADER]),
                )
            except errors.NotFoundError:  # unloaded since it was listed
                return None
            self._memo.put(key, size, 1)
        count, width, height = size
        shape = content.get("input_shape")
        return {
            "count": count,
            "labels": labels if isinstance(labels, list) else [],
            "width": width,
            "height": height,
            "input_shape": shape if isinstance(shape, list) and all(isinstance(side, int) for side in shape) else None,
        }


def _warm_jobs(blobs: dict, tensors: dict) -> list[tuple]:
    """``(run, tag, series, layer, kind)`` to read ahead of the :data:`PREWARM_RUNS` newest runs, newest first: a run's
    grid timelines (``kind`` None), then its layers' series of each of :data:`PREWARM_KINDS` in turn (the stats, which
    the heat strip shows first, before the change)."""

    def newest(run: str) -> float:
        times = [series.max_wall_time for series in blobs[run].values() if series.max_wall_time is not None]
        return max(times, default=float("-inf"))

    jobs = []
    for run in sorted(blobs, key=newest, reverse=True)[:PREWARM_RUNS]:
        layers = []
        for tag, series in blobs[run].items():
            info = _grid_info(tag, series.plugin_content)
            if info is not None and info.kind == metadata.KIND_ACTIVATIONS:
                layers.append((info.index, info.layer, tag, series))
        layers.sort(key=lambda item: (item[0], item[1]))
        jobs += [(run, tag, series, layer, None) for _, layer, tag, series in layers]
        run_tensors = tensors.get(run, {})
        for kind in PREWARM_KINDS:
            for _, layer, _, _ in layers:
                tensor_tag = metadata.tag_for(kind, layer)
                if tensor_tag in run_tensors:
                    jobs.append((run, tensor_tag, run_tensors[tensor_tag], layer, kind))
    return jobs


def _grid_entry(info: Optional[metadata.LayerInfo]) -> Optional[dict[str, Any]]:
    """A layer's other grid series (weights, strongest) in its entry: how it is drawn (:meth:`metadata.LayerInfo.drawing`) and, for
    a ranked kind, ``ranks``, the tiles per filter shown (at most ``MAX_TOP_K``); None when the layer has no such series."""
    if info is None:
        return None
    entry = info.drawing()
    if kinds.KINDS[info.kind].ranked:
        entry["ranks"] = min(info.tiles_per_filter, metadata.MAX_TOP_K)
    return entry


def _problem(run: str, tag: Optional[str], error: errors.PublicError) -> dict[str, Any]:
    """An entry of ``errors``: the run, the series (None: the whole run) and why it could not be read."""
    reason = error.reason if isinstance(error, UnreadableError) else str(error)[:_REASON_LENGTH]
    return {"run": run, "tag": tag, "error": reason}


def _decimal(blob: bytes) -> Optional[int]:
    """A ``width``/``height`` entry of an image tensor, or None if it is not a decimal number."""
    text = blob.decode("ascii", "replace")
    return int(text) if re.fullmatch(r"[0-9]{1,9}", text) else None
