"""Reads the plugin's series through TensorBoard's data provider, with small caches.

Only the data provider is used (``list_*``/``read_*``/``read_blob``), so the plugin
works with the Python loader and the Rust data server alike. A grid or stats value
at a logged step never changes, so a cached series answers any step it holds
without asking the provider; a step it lacks, and every whole-series read,
re-checks the series' last step and time (its *version*) first. A cached stats
series is trusted for :data:`FRESH_SECONDS` after it was last checked, so a run
deleted or rewritten in place stops being answered from the cache soon after
TensorBoard notices (a grid's PNG is always read from the provider).

A step logged more than once (a run trained again into the same directory) is
served once: a grid series keeps, per step, the datum the provider returns last
for it, and a stats series the datum of the same event as the layer's grid
(docs/http-api.md, "Steps logged more than once").
"""

from __future__ import annotations

import array
import bisect
import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from tensorboard import context as tb_context
from tensorboard import errors
from tensorboard.data import provider

from ..format import kinds, metadata
from . import params
from .cache import BudgetCache

ALL_STEPS = 2**31 - 1
"""``downsample`` meaning "every stored step": both loaders return all of a series when asked for at least as many."""

TIMELINE_BUDGET = 96 * 2**20
"""Most bytes (:attr:`Timeline.cost`) kept in the timeline cache: 20 layers x 10,000 steps of one probe (benchmarks'
``long_run``; 3 blob keys a step, about 2.4 MB a layer) several times over. The budget of 500,000 keys and steps
before held 12 of those 20 layers, so the layers evicted each other and a ``grid``/``steps`` request re-read a
10,000-step series (300-1,200 ms)."""

STATS_BUDGET = 32 * 2**20
"""Most bytes of stats arrays kept in the stats cache."""

FRESH_SECONDS = 2.0
"""How long a cached stats series answers the steps it holds before the series is listed again."""

_LIST_ATTEMPTS = 3
"""Listings tried when the Python loader drops a run while listing it."""

ESCAPED_NAMES = 'the data server of --load_fast=true cannot read back names with ", \\ or control characters; rename it or use --load_fast=false'
"""Why a run or series whose name needs escaping in JSON cannot be read (docs/security.md)."""

_REASON_LENGTH = 160
"""Longest data provider message quoted as the reason of a read that failed."""

Version = tuple[Optional[int], Optional[float]]


def version_of(series: Any) -> Version:
    """What changes when a series gains data: its last step and wall time."""
    return series.max_step, series.max_wall_time


def needs_escaping(name: str) -> bool:
    """Whether JSON writes ``name`` with escapes (``"``, ``\\``, control characters): TensorBoard's data server then fails to read it back."""
    return json.dumps(name, ensure_ascii=False)[1:-1] != name


class UnreadableError(errors.InvalidArgumentError):
    """A 400: the data provider failed to read a series' data back; ``reason`` says why, without the names."""

    def __init__(self, run: str, tag: str, reason: str):
        super().__init__(f"cannot read {params.quote(tag)} of run {params.quote(run)}: {reason}")
        self.reason = reason


def _last_per_step(datums: list) -> list:
    """``datums`` sorted by step, keeping of a step given more than once the datum given last."""
    by_step = {datum.step: datum for datum in datums}
    return [by_step[step] for step in sorted(by_step)]


def _position(steps: Sequence[int], step: int) -> Optional[int]:
    """Where ``step`` is in the sorted ``steps``, or None if it is not there."""
    position = bisect.bisect_left(steps, step)
    return position if position < len(steps) and steps[position] == step else None


@dataclass(frozen=True)
class Timeline:
    """Steps (ascending, each once), wall times and blob keys (one tuple per step) of a blob-sequence series.

    The keys are kept as one ``prefix`` common to all of them and each key's rest
    (``suffixes``): both loaders' keys encode the experiment, run and tag before the
    step, so a long series takes about half the memory.
    """

    version: Version
    steps: array.array  # "q"
    wall_times: array.array  # "d"
    prefix: str
    suffixes: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, version: Version, steps: Sequence[int], wall_times: Sequence[float], keys: Sequence[Sequence[str]]) -> Timeline:
        every = [key for step_keys in keys for key in step_keys]
        prefix = os.path.commonprefix(every) if every else ""
        cut = len(prefix)
        suffixes = tuple(tuple(key[cut:] for key in step_keys) for step_keys in keys)
        return cls(version, array.array("q", steps), array.array("d", wall_times), prefix, suffixes)

    @property
    def cost(self) -> int:
        """About the bytes it holds (the cache's budget): each tuple's and string's own size and the characters."""
        strings = sum(map(len, self.suffixes))
        characters = sum(len(key) for step_keys in self.suffixes for key in step_keys)
        return 16 * len(self.steps) + _TUPLE_BYTES * len(self.suffixes) + _STRING_BYTES * strings + characters + len(self.prefix)

    def keys_of(self, position: int) -> tuple[str, ...]:
        """The blob keys at the ``position``-th step (negative: from the end)."""
        return tuple(self.prefix + suffix for suffix in self.suffixes[position])

    def last_keys(self) -> tuple[str, ...]:
        """The blob keys of the last step; () without steps."""
        return self.keys_of(-1) if self.suffixes else ()

    def keys_at(self, step: int) -> Optional[tuple[str, ...]]:
        position = _position(self.steps, step)
        return None if position is None else self.keys_of(position)


_TUPLE_BYTES = 64
"""About what a small tuple costs besides its items' slots (CPython: 40 bytes, and 8 a slot)."""

_STRING_BYTES = 57
"""About what a string costs besides its characters (CPython: 49 bytes for an ASCII ``str``, and its slot)."""


@dataclass(frozen=True)
class StatsSeries:
    """A tensor series (stats, topk, change): float32 ``values[step, ..., field]``, fields in the order this version knows
    (its :class:`kinds.TensorKind`'s ``fields``; stats: ``[step, probe, filter, field]``), steps ascending, each once.

    ``checked`` is the ``time.monotonic()`` when a listing last showed the series at ``version``.
    """

    version: Version
    steps: tuple[int, ...]
    values: np.ndarray
    checked: float
    truncated: bool = False
    """Some step had more entries along axis 1 than the kind's ``max_ranks`` (topk: ranks per filter), cut there."""

    def at(self, step: int) -> Optional[np.ndarray]:
        position = _position(self.steps, step)
        return None if position is None else self.values[position]


def _stats_fields(content: bytes) -> Optional[list]:
    """The field names a tensor series (stats, topk, change) was written with (its metadata), or None if unreadable."""
    try:
        fields = metadata.parse_content(content).get("fields")
    except metadata.FormatError:
        return None
    return fields if isinstance(fields, list) and all(isinstance(name, str) for name in fields) else None


def _aligned(value: np.ndarray, fields: list, kind: kinds.TensorKind) -> Optional[np.ndarray]:
    """A stored value of ``kind`` cut and in this version's field order (:meth:`kinds.TensorKind.aligned`), or None if it is not one."""
    try:
        return kind.aligned(value, fields)
    except metadata.FormatError:
        return None


class SingleFlight:
    """One read per key at a time: a caller asking for a key that is being read waits for that read's answer.

    If the read it waited for fails, the caller reads again itself (one of the waiters
    does, the others wait for it): a failed background read never fails a request.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._reads: dict[Hashable, Future] = {}

    def run(self, key: Hashable, read: Callable[[], Any]) -> Any:
        with self._lock:
            future = self._reads.get(key)
            owner = future is None
            if owner:
                future = self._reads[key] = Future()
        if not owner:
            try:
                return future.result()
            except Exception:
                return self.run(key, read)
        try:
            value = read()
        except BaseException as error:
            future.set_exception(error)
            raise
        finally:
            with self._lock:
                del self._reads[key]
        future.set_result(value)
        return value

    def reading(self) -> int:
        """Reads now in flight."""
        with self._lock:
            return len(self._reads)


class SeriesReader:
    """The plugin's access to one data provider; thread-safe.

    Each series is read by one caller at a time (:class:`SingleFlight`): a request for
    a series that a background read (:meth:`prewarm`) or another request is reading
    waits for that read instead of making a second one.
    """

    def __init__(self, data_provider: provider.DataProvider, downsample: int):
        self._provider = data_provider
        self._downsample = downsample
        self._timelines = BudgetCache(TIMELINE_BUDGET)
        self._stats = BudgetCache(STATS_BUDGET)
        self._flights = SingleFlight()

    # Listings ------------------------------------------------------------

    def blob_series(self, ctx: tb_context.RequestContext, eid: str, run: Optional[str] = None, tag: Optional[str] = None) -> dict:
        """``{run: {tag: BlobSequenceTimeSeries}}`` of the plugin, optionally of one run and tag."""
        return _listing(self._provider.list_blob_sequences, ctx, eid, run, tag)

    def tensor_series(self, ctx: tb_context.RequestContext, eid: str, run: Optional[str] = None, tag: Optional[str] = None) -> dict:
        """``{run: {tag: TensorTimeSeries}}`` of the plugin, optionally of one run and tag."""
        return _listing(self._provider.list_tensors, ctx, eid, run, tag)

    # Blob sequences ----------------------------------------------------------

    def timeline(
        self, ctx: tb_context.RequestContext, eid: str, run: str, tag: str, version: Optional[Version] = None, evict: bool = True
    ) -> Timeline:
        """The series' current timeline; ``version`` (from a listing just made) saves a look-up.

        With ``evict=False`` (a background read) the timeline read is kept only if it
        fits in the cache without evicting others.

        Raises NotFoundError when the series does not exist.
        """
        if version is None:
            series = self.blob_series(ctx, eid, run, tag).get(run, {}).get(tag)
            if series is None:
                raise errors.NotFoundError(f"no series {tag!r} in run {run!r}")
            version = version_of(series)
        cached = self._timelines.get((eid, run, tag))
        if cached is not None and cached.version == version:
            return cached
        return self._flights.run(("timeline", eid, run, tag, version), lambda: self._read_timeline(ctx, eid, run, tag, version, evict))

    def _read_timeline(self, ctx: tb_context.RequestContext, eid: str, run: str, tag: str, version: Version, evict: bool) -> Timeline:
        cached = self._timelines.get((eid, run, tag))
        if cached is not None and cached.version == version:  # read by the one this caller waited for
            return cached
        datums = self._read(self._provider.read_blob_sequences, ctx, eid, run, tag)
        if datums is None:
            raise errors.NotFoundError(f"no series {tag!r} in run {run!r}")
        datums = _last_per_step(datums)
        timeline = Timeline.of(
            version,
            [datum.step for datum in datums],
            [datum.wall_time for datum in datums],
            [[reference.blob_key for reference in datum.values] for datum in datums],
        )
        self._timelines.put((eid, run, tag), timeline, timeline.cost, evict=evict)
        return timeline

    def warm_timeline(self, ctx: tb_context.RequestContext, eid: str, run: str, tag: str, version: Version) -> bool:
        """Reads a timeline ahead of its first request (:meth:`timeline` with ``evict=False``); whether it is cached now."""
        self.timeline(ctx, eid, run, tag, version, evict=False)
        cached = self._timelines.get((eid, run, tag))
        return cached is not None and cached.version == version

    def keys_at(self, ctx: tb_context.RequestContext, eid: str, run: str, tag: str, step: int) -> Optional[tuple[str, ...]]:
        """The blob keys of a series at ``step`` (None if not logged); no provider call when cached."""
        cached = self._timelines.get((eid, run, tag))
        keys = cached.keys_at(step) if cached is not None else None
        if keys is None:
            keys = self.timeline(ctx, eid, run, tag).keys_at(step)
        return keys

    def blob(self, ctx: tb_context.RequestContext, run: str, tag: str, key: str) -> bytes:
        """One blob of the run's series ``tag``.

        Raises NotFoundError if it has gone (a run removed since it was listed) or is not a
        byte string, UnreadableError if the provider fails to read it back.
        """
        try:
            blob = self._provider.read_blob(ctx, blob_key=key)
        except (KeyError, IndexError):
            raise errors.NotFoundError("the requested data is no longer loaded") from None
        except errors.InvalidArgumentError as error:  # the data server's own key, which it fails to parse
            escaped = needs_escaping(run) or needs_escaping(tag)
            raise UnreadableError(run, tag, ESCAPED_NAMES if escaped else str(error).removeprefix("Invalid argument: ")[:_REASON_LENGTH]) from None
        if not isinstance(blob, bytes):  # a hand-made series of numbers: the Python loader returns an element of its array
            raise errors.NotFoundError("the requested data is not an image")
        return blob

    # Stats tensors -------------------------------------------------------

    def stats(
        self,
        ctx: tb_context.RequestContext,
        eid: str,
        run: str,
        layer: str,
        kind: str = metadata.KIND_STATS,
        series: Optional[provider.TensorTimeSeries] = None,
        evict: bool = True,
    ) -> StatsSeries:
        """The layer's current ``kind`` series (stats, topk, change); NotFoundError when it has none.

        ``series`` (from a listing just made) saves a look-up; with ``evict=False`` (a
        background read) the series read is kept only if it fits without evicting others.
        """
        tag = metadata.tag_for(kind, layer)
        if series is None:
            series = self.tensor_series(ctx, eid, run, tag).get(run, {}).get(tag)
        if series is None:
            raise errors.NotFoundError(f"no {kind} for layer {params.quote(layer)} in run {params.quote(run)}")
        cached = self._stats.get((eid, run, tag))
        if cached is not None and cached.version == version_of(series):
            cached = dataclasses.replace(cached, checked=time.monotonic())
            self._stats.put((eid, run, tag), cached, cached.values.nbytes)
            return cached
        read = lambda: self._read_stats(ctx, eid, run, layer, kind, series, evict)  # noqa: E731
        return self._flights.run(("stats", eid, run, tag, version_of(series)), read)

    def _read_stats(
        self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str, kind: str, series: provider.TensorTimeSeries, evict: bool
    ) -> StatsSeries:
        tag = metadata.tag_for(kind, layer)
        cached = self._stats.get((eid, run, tag))
        if cached is not None and cached.version == version_of(series):  # read by the one this caller waited for
            return cached
        datums = self._read(self._provider.read_tensors, ctx, eid, run, tag)
        if datums is None:
            raise errors.NotFoundError(f"no {kind} for layer {params.quote(layer)} in run {params.quote(run)}")
        tensor_kind = kinds.tensor_kind(kind)
        fields = _stats_fields(series.plugin_content) or list(tensor_kind.fields)
        truncated = any(tensor_kind.truncated(datum.numpy) for datum in datums)
        readable = [(datum, _aligned(datum.numpy, fields, tensor_kind)) for datum in datums]
        datums = self._one_per_step(ctx, eid, run, layer, [datum for datum, aligned in readable if aligned is not None], tensor_kind.grid)
        arrays = {id(datum): aligned for datum, aligned in readable}
        shape = arrays[id(datums[-1])].shape if datums else (*[0] * (tensor_kind.rank - 1), len(tensor_kind.fields))
        datums = [datum for datum in datums if arrays[id(datum)].shape == shape]  # the callback never changes it
        values = np.stack([arrays[id(datum)] for datum in datums]) if datums else np.zeros((0, *shape), np.float32)
        stats = StatsSeries(version_of(series), tuple(datum.step for datum in datums), values, time.monotonic(), truncated)
        self._stats.put((eid, run, tag), stats, values.nbytes, evict=evict)
        return stats

    def warm_stats(self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str, kind: str, series: provider.TensorTimeSeries) -> bool:
        """Reads a tensor series ahead of its first request (:meth:`stats` with ``evict=False``); whether it is cached now."""
        self.stats(ctx, eid, run, layer, kind, series, evict=False)
        cached = self._stats.get((eid, run, metadata.tag_for(kind, layer)))
        return cached is not None and cached.version == version_of(series)

    def stats_at(
        self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str, step: int, kind: str = metadata.KIND_STATS
    ) -> Optional[np.ndarray]:
        """The layer's ``kind`` tensor at ``step`` (None if not logged); no provider call when cached and checked recently."""
        return self.series_at(ctx, eid, run, layer, step, kind).at(step)

    def series_at(self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str, step: int, kind: str = metadata.KIND_STATS) -> StatsSeries:
        """The layer's ``kind`` series, holding ``step`` if it was logged; no provider call when the cached one holds it
        and was checked recently."""
        cached = self._stats.get((eid, run, metadata.tag_for(kind, layer)))
        fresh = cached is not None and time.monotonic() - cached.checked < FRESH_SECONDS
        if fresh and cached.at(step) is not None:
            return cached
        return self.stats(ctx, eid, run, layer, kind)

    def tensors(self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str, kind: str, grid_kind: str) -> list:
        """The datums of the layer's tensor series ``kind`` (written with its ``grid_kind`` series), one per step
        (:meth:`_one_per_step`), not cached: for the series the plugin computes from (``responses``), whose answers
        are cached where they are computed."""
        datums = self._read(self._provider.read_tensors, ctx, eid, run, metadata.tag_for(kind, layer))
        if datums is None:
            raise errors.NotFoundError(f"no {kind} for layer {params.quote(layer)} in run {params.quote(run)}")
        return self._one_per_step(ctx, eid, run, layer, datums, grid_kind)

    def _one_per_step(self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str, datums: list, grid_kind: str) -> list:
        """Tensor ``datums`` sorted by step, one per step: of a step given more than once, the one from the event of the layer's
        grid of ``grid_kind`` (the tensor kind's ``grid``).

        The callback writes a layer's grid and stats in one event, so they share its wall
        time; without a match, the datum given last. The grid series decides because the
        Python loader's provider serves a blob sequence's first event at a step but every
        tensor event.
        """
        steps = [datum.step for datum in datums]
        if len(set(steps)) == len(steps):
            return sorted(datums, key=lambda datum: datum.step)
        try:
            timeline = self.timeline(ctx, eid, run, metadata.tag_for(grid_kind, layer))
            grid_times = dict(zip(timeline.steps, timeline.wall_times))
        except errors.NotFoundError:  # stats without grids
            grid_times = {}
        # A stable sort puts a step's matching datum after the others, which keep their order: it is the last one.
        return _last_per_step(sorted(datums, key=lambda datum: (datum.step, datum.wall_time == grid_times.get(datum.step))))

    def _read(self, method: Callable, ctx: tb_context.RequestContext, eid: str, run: str, tag: str) -> Optional[list]:
        """One series' data from ``read_blob_sequences`` or ``read_tensors``, or None if it does not exist."""
        try:
            data = method(ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME, downsample=self._downsample, run_tag_filter=_filter(run, tag))
        except KeyError:  # the Python loader dropped the run (its directory was deleted) while reading it
            return None
        return data.get(run, {}).get(tag)


def _listing(method: Callable, ctx: tb_context.RequestContext, eid: str, run: Optional[str], tag: Optional[str]) -> dict:
    """``list_blob_sequences`` or ``list_tensors`` of the plugin; listed again when a run vanishes meanwhile."""
    for _ in range(_LIST_ATTEMPTS):
        try:
            return method(ctx, experiment_id=eid, plugin_name=metadata.PLUGIN_NAME, run_tag_filter=_filter(run, tag))
        except KeyError:  # the Python loader dropped a run (its directory was deleted) between two of its look-ups
            continue
    raise errors.NotFoundError("runs were removed while they were listed")


def _filter(run: Optional[str], tag: Optional[str]) -> Optional[provider.RunTagFilter]:
    if run is None:
        return None
    return provider.RunTagFilter(runs=[run], tags=None if tag is None else [tag])
