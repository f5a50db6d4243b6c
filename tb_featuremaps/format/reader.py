"""Loads feature-map logs back into NumPy arrays, reading the event files with :mod:`.eventfile`.

Used by the export command line and the tests::

    runs = reader.load("logs")
    conv = runs["feature_maps"].layers["conv2d"]
    conv.steps               # [S] int
    conv.tiles(-1, probe=3)  # [filters, tile_h, tile_w] uint8 at the last step
    conv.values(-1, probe=3) # the same as float32 values (NaN where not finite)
    conv.stats               # [S, probes, filters, len(STATS_FIELDS)] float32
    conv.change              # [S, filters, len(CHANGE_FIELDS)] float32 (NaN where not logged)

With a pool (``FeatureMapsCallback(..., pool=x_val[:500])``)::

    best = runs["feature_maps"].strongest["conv2d"]
    best.topk                # [S, filters, k, len(TOPK_FIELDS)] float32
    best.inputs(-1)          # [filters, k] pool indices at the last step
    best.patch(-1, 3, 0)     # filter 3's strongest patch (uint8 levels of the pool's input range)
    runs["feature_maps"].pool.labels
    best.responses           # [S, N, filters] float32: each filter's maximum for each pool input
    best.similarity_to()     # [S] linear CKA of each step to the latest (format/convergence.py)
    best.settled_step()      # the first step from which that stays >= 0.95
    runs["feature_maps"].selectivity("conv2d", -1).index  # [filters], with pool_labels=

Event files are read with the project's own framing (lengths checked against the
file before anything is allocated), never with TensorFlow's record reader, which
a corrupt length crashes (see docs/security.md). :func:`load` reads each event's
step, tags and metadata and leaves the values undecoded in their records: a record's
data CRC is checked only when one of its values is first decoded, and a record
that fails it raises :class:`metadata.FormatError` then (docs/format.md,
"Reading"). Listing a run so decodes nothing, and a figure of one step only
that step's records.

A run or series that cannot be read is left out, never the others: :func:`load`
returns what it could read, a :class:`Runs` dict whose ``failures`` lists each
:class:`ReadFailure` (run, series, reason), and warns once naming them::

    runs = reader.load("logs")
    for failure in runs.failures:
        print(failure)           # run 'x': series 'activations/conv' left out: ...
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np
from tensorboard.compat.proto import summary_pb2, types_pb2

from . import convergence, eventfile, filesystem, kinds, metadata
from .pictures import decode_png


class _Deferred:
    """A ``[step, ...]`` array of a layer's, decoded a step at a time when asked for (see :func:`_deferred_field`)."""

    def at(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def __call__(self) -> np.ndarray:
        raise NotImplementedError


def _tensors_of(log) -> dict:
    """A layer log's tensor series, tensor kind name → ``[step, ...]`` array or :class:`_Deferred` (kept outside its dataclass fields)."""
    return log.__dict__.setdefault("_tensors", {})


def _deferred_field(name: str) -> property:
    """The dataclass field of tensor kind ``name`` (:meth:`LayerLog.tensor`); it may be given a :class:`_Deferred`."""

    def put(self, value) -> None:
        _tensors_of(self)[name] = value

    return property(lambda self: self.tensor(name), put)


def _row(log, name: str, index: int) -> Optional[np.ndarray]:
    """Step position ``index`` of tensor kind ``name``'s array, decoding only that step if it is still deferred."""
    value = _tensors_of(log).get(name)
    if isinstance(value, _Deferred):
        return value.at(index)
    return None if value is None else value[index]


@dataclass
class LayerLog:
    """One layer's grid series (activations or weights) and, for activations, its stats.

    Read by :func:`load`, ``pngs``, ``stats`` and ``change`` are decoded (and
    their records' CRCs checked) when used: ``pngs[i]`` a step at a time, the
    arrays whole on first access, or a step at a time through :meth:`stats_at`
    and the methods that take a step position.
    """

    info: metadata.LayerInfo
    steps: np.ndarray
    wall_times: np.ndarray
    pngs: Sequence  # [step][probe] -> PNG bytes
    stats: Optional[np.ndarray] = None  # [step, probe, filter, field]
    change: Optional[np.ndarray] = None  # [step, filter, len(CHANGE_FIELDS)]; activations with a change series only

    def tensor(self, kind: str) -> Optional[np.ndarray]:
        """The layer's series of tensor kind ``kind`` (``format.kinds``, written with this grid): ``[step, ...]`` float32, decoded
        whole on first use, NaN at a step it lacks; None when the log has none."""
        store = _tensors_of(self)
        value = store.get(kind)
        if isinstance(value, _Deferred):
            value = store[kind] = value()
        return value

    def tensor_at(self, kind: str, index: int) -> Optional[np.ndarray]:
        """Step position ``index`` of :meth:`tensor` ``kind`` (only that step decoded); None when the log has none."""
        return _row(self, kind, index)

    def stats_at(self, index: int) -> Optional[np.ndarray]:
        """The stats ``[probe, filter, field]`` at step position ``index`` (only that step decoded); None without stats."""
        return _row(self, "stats", index)

    def changing(self, index: int) -> float:
        """The fraction of filters still changing at step position ``index`` (:func:`metadata.changing_filters`); NaN when unknown."""
        change = _row(self, "change", index)
        if change is None:
            return float("nan")
        return metadata.changing_filters(change)

    def index_of(self, step: int) -> int:
        """Position of ``step`` in :attr:`steps`; KeyError if it was not logged."""
        found = np.flatnonzero(self.steps == step)
        if not len(found):
            raise KeyError(f"{self.info.step_unit} {step} is not logged for {self.info.layer}; logged: {self.steps.tolist()}")
        return int(found[0])

    def grid(self, index: int, probe: int = 0) -> np.ndarray:
        """The decoded grid image (uint8 ``[H, W]``, or ``[H, W, 2]`` with NaN alpha) at step position ``index``."""
        return decode_png(self.pngs[index][probe])

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
        stats = self.stats_at(index)
        if stats is None:
            raise ValueError(
                f"{self.info.kind}/{self.info.layer} has no stats, so its gray levels cannot be mapped back to values; use tiles() for the levels"
            )
        cells = self._cells(index, probe)
        low, high = metadata.tile_ranges(self.info.normalization, stats)
        values = metadata.levels_to_values(cells[..., 0] if cells.ndim == 4 else cells, low[probe], high[probe])
        if cells.ndim == 4:
            values[cells[..., 1] == 0] = np.nan
        return values


@dataclass
class StrongestLog(LayerLog):
    """One layer's ``strongest/`` sheets and ``topk/`` tensors: each drawn filter's top-k pool inputs and their patches."""

    topk: Optional[np.ndarray] = None  # [step, filter, k, len(TOPK_FIELDS)], NaN where not logged
    responses: Optional[np.ndarray] = None  # [step, pool input, filter] float32, NaN where not logged; None in logs without them

    def responses_at(self, index: int) -> np.ndarray:
        """Each filter's response to each pool input at step position ``index``: float32 ``[N, filters]`` (only that step decoded)."""
        self._check_responses()
        return _row(self, "responses", index)

    def _check_responses(self) -> None:
        if _tensors_of(self).get(kinds.responses.NAME) is None:
            raise ValueError(
                f"{self.info.layer} has no responses series (a log written before tb-featuremaps stored them, or without a pool); "
                "log it again with pool= to compare its steps"
            )

    def similarity_to(self, reference: int = -1) -> np.ndarray:
        """Linear CKA of each step's responses to step position ``reference`` (default the latest): float64 ``[steps]``."""
        self._check_responses()
        return convergence.cka_to(self.responses, reference)

    def similarity(self) -> np.ndarray:
        """Linear CKA between every two steps' responses: float64 ``[steps, steps]`` (:func:`convergence.cka_matrix`)."""
        self._check_responses()
        return convergence.cka_matrix(self.responses)

    def settled_step(self, threshold: float = convergence.SETTLED_THRESHOLD) -> Optional[int]:
        """The first step from which the layer's similarity to its latest step stays ≥ ``threshold`` (None: never)."""
        return convergence.settled_step(self.similarity_to(), self.steps, threshold)

    def selectivity(self, index: int, labels: Sequence) -> convergence.Selectivity:
        """Each filter's class means, preferred class and selectivity index at step position ``index``, with the pool's ``labels``."""
        return convergence.class_selectivity(self.responses_at(index), labels)

    def overlap(self, index: int) -> np.ndarray:
        """Each filter's top-k overlap (Jaccard) with the previous logged step, at step position ``index``: ``[filters]``, NaN at the first."""
        position = range(len(self.steps))[index]
        if position == 0:
            return np.full(self.info.filters_shown, np.nan)
        return convergence.topk_overlap(self.inputs(position - 1), self.inputs(position))

    @property
    def top_k(self) -> int:
        """Ranks read per filter: the sheet's, at most :data:`metadata.MAX_TOP_K`."""
        return min(self.info.tiles_per_filter, metadata.MAX_TOP_K)

    @property
    def truncated(self) -> bool:
        """Whether the log holds more ranks per filter than :data:`metadata.MAX_TOP_K`, which were left out."""
        return self.info.tiles_per_filter > metadata.MAX_TOP_K

    @property
    def pool_size(self) -> int:
        return self.info.extra.pool_size

    @property
    def patch_size(self) -> tuple:
        """The patches' size in input pixels (before any block averaging of the tiles)."""
        size = self.info.extra.patch_size
        return size if size is not None else (self.info.layout.tile_height, self.info.layout.tile_width)

    @property
    def receptive_field(self) -> Optional[metadata.ReceptiveField]:
        """Where the layer's units look in the input; None when the patches are the whole input."""
        return self.info.extra.receptive_field

    def field(self, index: int, name: str) -> np.ndarray:
        """One :data:`metadata.TOPK_FIELDS` field at step position ``index``: float32 ``[filters, k]``."""
        return _row(self, "topk", index)[..., metadata.TOPK_FIELDS.index(name)]

    def inputs(self, index: int) -> np.ndarray:
        """Each filter's top-k pool inputs (indices into the ``pool`` series), strongest first: int ``[filters, k]``, -1 where unknown."""
        found = self.field(index, "input")
        return np.where(np.isfinite(found), found, -1).astype(np.int64)

    def patches(self, index: int) -> np.ndarray:
        """Every patch at step position ``index``: uint8 ``[filters, k, tile_h, tile_w]`` (``[..., 3]`` for RGB inputs)."""
        image = self.grid(index)
        layout, k = self.info.layout, self.top_k
        cells = np.empty((self.info.filters_shown, k, layout.tile_height, layout.tile_width, *image.shape[2:]), image.dtype)
        for f in range(self.info.filters_shown):
            for rank in range(k):
                top, left = layout.tile_origin(f * self.info.tiles_per_filter + rank)
                cells[f, rank] = image[top : top + layout.tile_height, left : left + layout.tile_width]
        return cells

    def patch(self, index: int, filter_index: int, rank: int = 0) -> np.ndarray:
        """Filter ``filter_index``'s rank ``rank`` patch at step position ``index``: uint8 ``[tile_h, tile_w]`` (or ``[..., 3]``).

        Gray levels stand for input values by ``lo + g/255·(hi − lo)``, ``[lo, hi]`` the pool's ``input_range``.
        """
        if not (0 <= filter_index < self.info.filters_shown and 0 <= rank < self.top_k):
            raise IndexError(
                f"{self.info.layer} has filters 0..{self.info.filters_shown - 1}, ranks 0..{self.top_k - 1}; not filter {filter_index}, rank {rank}"
            )
        top, left = self.info.layout.tile_origin(filter_index * self.info.tiles_per_filter + rank)
        return self.grid(index)[top : top + self.info.layout.tile_height, left : left + self.info.layout.tile_width]


LayerLog.stats = _deferred_field("stats")
LayerLog.change = _deferred_field("change")
StrongestLog.topk = _deferred_field("topk")
StrongestLog.responses = _deferred_field("responses")


@dataclass
class PoolLog:
    """The ``pool`` series: the inputs the strongest responses were found among (decoded when asked)."""

    labels: list
    input_shape: list
    input_range: tuple
    pngs: list

    def __len__(self) -> int:
        return len(self.pngs)

    def picture(self, index: int) -> np.ndarray:
        """Pool input ``index`` as drawn (uint8 levels of :attr:`input_range`; at most 64 pixels per side)."""
        return decode_png(self.pngs[index])

    def pictures(self) -> np.ndarray:
        """Every pool input's picture: uint8 ``[N, H, W]`` (or ``[N, H, W, 3]``)."""
        return np.stack([self.picture(index) for index in range(len(self.pngs))])


@dataclass(frozen=True)
class ReadFailure:
    """A run or one of its series that :func:`load` could not read and left out; ``series`` is None for the whole run."""

    run: str
    series: Optional[str]
    reason: str

    def __str__(self) -> str:
        what = "left out" if self.series is None else f"series {self.series!r} left out"
        return f"run {self.run!r}: {what}: {self.reason}"


class Runs(dict):
    """What :func:`load` returns: run name → :class:`RunLog`, and ``failures``, what it left out (:class:`ReadFailure`)."""

    def __init__(self, runs=(), failures: Sequence[ReadFailure] = ()):
        super().__init__(runs)
        self.failures: list[ReadFailure] = list(failures)


class ReadWarning(UserWarning):
    """Warned by :func:`load` when it left a run or series out (its ``failures``)."""


@dataclass
class RunLog:
    """Everything one run directory holds in the feature-maps format."""

    name: str
    layers: dict = field(default_factory=dict)  # layer path -> LayerLog (activations), model order
    weights: dict = field(default_factory=dict)  # layer path -> LayerLog (kernels)
    probe_images: list = field(default_factory=list)  # decoded probe pictures
    probe_labels: list = field(default_factory=list)
    strongest: dict = field(default_factory=dict)  # layer path -> StrongestLog (with a pool only)
    pool: Optional[PoolLog] = None  # with a pool only
    failures: list = field(default_factory=list)  # ReadFailure of each series of this run left out

    def selectivity(self, layer: str, index: int = -1) -> convergence.Selectivity:
        """Layer ``layer``'s class selectivity at step position ``index`` with the pool's labels as classes.

        Raises ``ValueError`` when the run has no pool or its labels are not classes (:func:`convergence.labels_are_classes`).
        """
        labels = self.pool.labels if self.pool is not None else []
        if not convergence.labels_are_classes(labels):
            raise ValueError(
                f"run {self.name!r} has no class labels for its pool ({len(set(labels))} distinct of {len(labels)}); "
                "log it with pool_labels= (one class per pool input) to get selectivity"
            )
        return self.strongest[layer].selectivity(index, labels)


@dataclass
class _Series:
    """One tag's metadata and its values by step; a step written again keeps its last value."""

    tag: str
    data: dict  # the parsed plugin content
    info: Optional[metadata.LayerInfo] = None  # grid series only
    values: dict = field(default_factory=dict)  # step -> (wall time, eventfile.Value)

    def by_step(self) -> tuple[np.ndarray, np.ndarray, list]:
        """Steps, wall times and values (not yet decoded), in step order."""
        steps = sorted(self.values)
        wall_times = [self.values[step][0] for step in steps]
        return np.array(steps, np.int64), np.array(wall_times, np.float64), [self.values[step][1] for step in steps]

    def tensor(self, step: int):
        """The ``TensorProto`` at ``step``, parsed now; FormatError if its record is damaged."""
        try:
            return self.values[step][1].tensor()
        except eventfile.CorruptRecord as error:
            raise metadata.FormatError(f"feature_maps series {self.tag!r} at step {step} cannot be read: {error}") from None
        except Exception as error:  # protobuf's DecodeError: framed, CRC intact, but not a tensor
            raise metadata.FormatError(f"feature_maps series {self.tag!r} at step {step} is not a tensor ({error}); rewrite the log") from None


def _is_events_file(name: str) -> bool:
    """An event file that may hold summaries, as TensorBoard tells them (``io_wrapper.IsSummaryEventsFile``)."""
    return "tfevents" in name and not name.endswith(".profile-empty")


def _run_files(logdir: str, run: Optional[str]) -> Iterator[tuple[str, list[str]]]:
    """``(run name, event files in name order)`` of each directory under ``logdir``, named as TensorBoard names runs.

    Local logdirs are walked as TensorBoard walks them (links followed); every path goes through :mod:`.filesystem`.
    """
    if run is not None:
        directory = logdir if run == "." else filesystem.join(logdir, run)
        try:
            names = [name for name, folder in filesystem.entries(directory) if not folder]
        except OSError:  # no such run
            names = []
        listed = [(run, directory, names)]
    else:
        listed = [(os.path.relpath(directory, logdir), directory, names) for directory, names in filesystem.walk(logdir)]
    for name, directory, names in listed:
        files = [filesystem.join(directory, file) for file in names if _is_events_file(file)]
        if files:
            yield name, sorted(files)


def _read_series(files: list[str], layers: Optional[Collection[str]], failed: dict[str, str]) -> Optional[dict[str, _Series]]:
    """The ``feature_maps`` series of one run's event files kept for ``layers`` (and the probes); None if it has none at all.

    Only the events' framing, steps, tags and metadata are read here; the
    values stay in the files' bytes until decoded (:meth:`_Series.tensor`). A
    series whose metadata cannot be read is left out, its tag and why put in ``failed``.
    """
    series: dict[str, Optional[_Series]] = {}  # tag -> its series, None where its values are not kept
    ours = False
    for path in files:
        for event in eventfile.index_events(path):
            for value in event.values:
                if value.tag not in series:
                    if value.metadata is None:
                        continue
                    try:
                        plugin_data = summary_pb2.SummaryMetadata.FromString(value.metadata).plugin_data
                    except Exception:  # protobuf's DecodeError: the event was framed but is not one
                        break
                    mine = plugin_data.plugin_name == metadata.PLUGIN_NAME
                    ours |= mine
                    series[value.tag] = _new_series(value.tag, plugin_data.content, layers, failed) if mine else None
                found = series[value.tag]
                if found is not None:
                    found.values[event.step] = (event.wall_time, value)
            else:
                continue
            break  # nothing after an unreadable event is trusted
    return {tag: found for tag, found in series.items() if found is not None} if ours else None


def _new_series(tag: str, content: bytes, layers: Optional[Collection[str]], failed: dict[str, str]) -> Optional[_Series]:
    try:
        found = metadata.classify(tag, content)  # checked whichever layers are asked for
    except metadata.FormatError as error:
        failed[tag] = str(error)
        return None
    if found is None:
        return None  # a kind this version does not know: skipped, as in the plugin's listing
    if found.kind in (metadata.KIND_PROBES, metadata.KIND_POOL) or layers is None or found.layer in layers:
        return _Series(tag, found.content, found.info)
    return None


def _pngs(series: _Series, step: int) -> list:
    """The PNGs of the ``[width, height, png...]`` value at ``step``."""
    tensor = series.tensor(step)
    if tensor.dtype != types_pb2.DT_STRING or len(tensor.string_val) <= metadata.IMAGE_HEADER:
        raise metadata.FormatError(
            f"feature_maps series {series.tag!r} at step {step} is not a [width, height, png, ...] string tensor; rewrite the log"
        )
    return list(metadata.pngs_of(tensor.string_val))


class _Pngs(Sequence):
    """A grid series' PNGs, ``[step position][probe]``, each step decoded when first used."""

    def __init__(self, series: _Series, steps: list):
        self._series, self._steps, self._decoded = series, steps, {}

    def __len__(self) -> int:
        return len(self._steps)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(len(self)))]
        position = range(len(self._steps))[index]  # IndexError as a list's
        if position not in self._decoded:
            self._decoded[position] = _pngs(self._series, self._steps[position])
        return self._decoded[position]

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"<{len(self)} steps of {self._series.tag!r} PNGs>"


_FLOATS = {types_pb2.DT_FLOAT: "<f4", types_pb2.DT_HALF: "<f2"}


def _ndarray(tensor) -> np.ndarray:
    """The array of a ``TensorProto``: float32 and float16 tensors read directly, others through TensorBoard's ``tensor_util``."""
    if tensor.dtype in _FLOATS and tensor.tensor_content:
        shape = [dim.size for dim in tensor.tensor_shape.dim]
        return np.frombuffer(tensor.tensor_content, _FLOATS[tensor.dtype]).reshape(shape)
    from tensorboard.util import tensor_util

    return tensor_util.make_ndarray(tensor)


class _Fields(_Deferred):
    """A tensor series of ``kind`` at a grid's steps (cut and aligned by field name, :meth:`kinds.TensorKind.aligned`), NaN at a step it lacks."""

    def __init__(self, series: _Series, steps: list, shape: tuple, kind: kinds.TensorKind):
        self._series, self._steps, self._shape, self._kind = series, steps, shape, kind

    def at(self, index: int) -> np.ndarray:
        step = self._steps[index]
        if step not in self._series.values:
            return np.full(self._shape, np.nan, np.float32)
        data, layer = self._series.data, self._series.tag.split("/", 1)[-1]
        stored = _ndarray(self._series.tensor(step))
        try:
            array = self._kind.aligned(stored, data.get("fields", self._kind.fields))  # a hostile k is cut before it is copied
        except metadata.FormatError as error:
            raise metadata.FormatError(f"{data['kind']} of {layer!r} at step {step} have shape {stored.shape}: {error}; rewrite the log") from None
        if array.shape != self._shape:
            raise metadata.FormatError(f"{data['kind']} of {layer!r} at step {step} have shape {array.shape}, not {self._shape}; rewrite the log")
        return array.astype(np.float32, copy=False)

    def __call__(self) -> np.ndarray:
        arrays = np.empty((len(self._steps), *self._shape), np.float32)
        for position in range(len(self._steps)):
            arrays[position] = self.at(position)
        return arrays


def _layer_log(grids: _Series, tensors_of: dict) -> LayerLog:
    """A grid series' log, with the layer's series of each tensor kind written with that grid (:func:`kinds.written_with`)."""
    info = grids.info
    steps, wall_times, _ = grids.by_step()
    step_list = steps.tolist()
    log = (StrongestLog if info.kind == metadata.KIND_STRONGEST else LayerLog)(info, steps, wall_times, _Pngs(grids, step_list))
    for name in kinds.written_with(info.kind):
        kind, series = kinds.tensor_kind(name), tensors_of.get(name)
        _tensors_of(log)[name] = None if series is None else _Fields(series, step_list, kind.shape(info.axis_sizes), kind)
    return log


def load(logdir: Union[str, os.PathLike], run: Optional[str] = None, layers: Optional[Collection[str]] = None) -> Runs:
    """Reads the runs under ``logdir`` that hold feature-map series (every step).

    Runs are named as TensorBoard names them: the directory's path relative to
    ``logdir`` (``"."`` for ``logdir`` itself). Event files are read in name
    order, each up to its first torn record (bad length or header CRC) or one
    that is not an event; a series keeps the first metadata it was written
    with; a step written more than once (two trainings in one run directory)
    keeps the value written last. Values are decoded, and their records' data
    CRCs checked, when first used.

    Each run, and each series of a run, is read on its own, as the plugin reads
    them: one that cannot be read (metadata this version rejects, a probes or
    pool value that is not pictures, an event file that cannot be opened) is
    left out and the rest returned. What was left out, and why, is in the
    result's ``failures`` (and each run's ``failures``), and one
    :class:`ReadWarning` names them.

    Args:
        logdir: The ``log_dir`` given to the callback (local or remote).
        run: Read only this run (no other directory is opened).
        layers: Keep only these layer paths (activations, weights, strongest inputs); the other
            layers' values are not decoded. A run is listed whichever layers it has.

    Returns:
        A :class:`Runs` dict, run name → :class:`RunLog`, in name order, with ``failures``.

    Raises:
        metadata.FormatError: later, when a value is decoded, for one that is not
            what its series holds or whose record fails its CRC.
    """
    runs, failures = {}, []
    for name, files in _run_files(os.fspath(logdir), run):
        failed: dict[str, str] = {}
        try:
            series = _read_series(files, layers, failed)
        except OSError as error:  # a file removed or unreadable since it was listed
            failures.append(ReadFailure(name, None, f"its event files cannot be read: {error}"))
            continue
        if series is None:
            continue
        log = runs[name] = _run_log(name, series, failed)
        log.failures = [ReadFailure(name, tag, reason) for tag, reason in failed.items()]
        failures += log.failures
    if failures:
        shown = "; ".join(map(str, failures[:5])) + (f"; and {len(failures) - 5} more" if len(failures) > 5 else "")
        warnings.warn(f"tb_featuremaps.reader.load left out what it cannot read (see the result's failures): {shown}", ReadWarning, stacklevel=2)
    return Runs(sorted(runs.items()), failures)


def _run_log(name: str, series: dict[str, _Series], failed: dict[str, str]) -> RunLog:
    """One run's :class:`RunLog` from its series; the probes or pool whose value cannot be read are put in ``failed``."""
    log = RunLog(name)
    fields_series: dict = {}  # layer path -> kind -> its fields series
    for found in series.values():
        if isinstance(kinds.lookup(found.data["kind"]), kinds.TensorKind):
            fields_series.setdefault(found.data["layer"], {})[found.data["kind"]] = found
    grids = []
    for found in series.values():
        try:
            if found.data["kind"] == metadata.KIND_PROBES:
                log.probe_images = [decode_png(png) for png in _pngs(found, max(found.values))]
                log.probe_labels = list(found.data["labels"])
            elif found.data["kind"] == metadata.KIND_POOL:
                content = found.data
                log.pool = PoolLog(
                    list(content.get("labels", [])),
                    list(content.get("input_shape", [])),
                    tuple(content.get("input_range", (0.0, 1.0))),
                    _pngs(found, max(found.values)),
                )
            elif found.info is not None:
                grids.append(_layer_log(found, fields_series.get(found.info.layer, {})))
        except (metadata.FormatError, OSError, ValueError, TypeError) as error:  # OSError: a PNG that does not decode
            failed[found.tag] = str(error)
    tables = {metadata.KIND_ACTIVATIONS: log.layers, metadata.KIND_WEIGHTS: log.weights, metadata.KIND_STRONGEST: log.strongest}
    for layer_log in sorted(grids, key=lambda item: item.info.index):
        tables[layer_log.info.kind][layer_log.info.layer] = layer_log
    return log
