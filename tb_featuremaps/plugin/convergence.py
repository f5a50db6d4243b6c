"""The answers of the convergence routes: each layer's similarity (linear CKA) to its latest step, the step x step
similarity map of one layer, and each filter's class selectivity and top-k overlap (docs/http-api.md).

Computed where shown from the stored ``responses/<layer>`` series (each filter's maximum per pool input at each step)
and the pool's labels, with the format's own math (:mod:`tb_featuremaps.format.convergence`); read only through the
:class:`~.series.SeriesReader`. Answers are kept in a :class:`~.cache.BudgetCache` keyed by the series' version
(its last step and time), so a series that gains a step is computed again and one that does not is answered at once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from tensorboard import context as tb_context
from tensorboard import errors

from ..format import convergence, kinds, metadata
from ..format.steps import sample_indices
from . import params
from .cache import BudgetCache
from .series import SeriesReader, SingleFlight, version_of

MAX_MAP_STEPS = 400
"""Most steps a ``similarity`` map holds: a layer logged at more steps is shown at this many, evenly spread (first and
last included), which the answer says (400 x 400 numbers are about 3 MB of JSON)."""

DEFAULT_THRESHOLD = convergence.SETTLED_THRESHOLD
"""The similarity to the latest step from which a layer counts as settled, unless ``threshold=`` says otherwise."""

RESPONSES = kinds.responses.NAME
"""The kind of the series the answers are computed from (``responses/<layer>``, ``format/kinds/responses.py``)."""


def decode(value: np.ndarray) -> Optional[np.ndarray]:
    """A stored responses value (float16 or float32) as float32 ``[N, F]``, or None when it is not one."""
    try:
        return kinds.responses.KIND.aligned(value, ())
    except metadata.FormatError:
        return None


ANSWERS_BUDGET = 64 * 2**20
"""Most bytes of computed answers kept (about: a 400 x 400 map is 6 MB as JSON lists)."""

_READERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="feature_maps_convergence")
"""Reads the layers of a ``convergence`` answer side by side: each read from TensorBoard's Rust data server waits about
40 ms (docs/http-api.md, "Latency"), and reads in flight together wait once."""


@dataclass(frozen=True)
class Responses:
    """One layer's stored responses: ``values[step, input, filter]`` (float32), ``steps`` ascending, each once."""

    steps: tuple[int, ...]
    values: np.ndarray


class ConvergenceAnswers:
    """Computes and caches the convergence routes' answers for one data provider; thread-safe."""

    def __init__(self, reader: SeriesReader):
        self._reader = reader
        self._cache = BudgetCache(ANSWERS_BUDGET)
        self._flights = SingleFlight()

    def _memo(self, key: Hashable, compute: Callable[[], Any], cost: Callable[[Any], int]) -> Any:
        """``compute()``, kept under ``key`` (which holds the versions it depends on); one computation per key at a time."""
        cached = self._cache.get(key)
        if cached is not None:
            return cached

        def run() -> Any:
            value = self._cache.get(key)
            if value is None:
                value = compute()
                self._cache.put(key, value, cost(value))
            return value

        return self._flights.run(key, run)

    # Reading -------------------------------------------------------------------------------------------------

    def _series(self, ctx: tb_context.RequestContext, eid: str, run: str) -> dict:
        """The run's tensor series ``{tag: TensorTimeSeries}``; NotFoundError for an unknown run."""
        listing = self._reader.tensor_series(ctx, eid, run)
        if run not in listing:
            raise params.not_found("run", run)
        return listing[run]

    def _read(self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str) -> Responses:
        """The layer's stored responses, read afresh (what is kept is what is computed from them: a 400-step layer's
        responses to a 500-input pool are tens of megabytes, its curve a few kilobytes)."""
        datums = self._reader.tensors(ctx, eid, run, layer, RESPONSES, kinds.responses.KIND.grid)
        arrays = [(datum.step, decode(datum.numpy)) for datum in datums]
        arrays = [(step, value) for step, value in arrays if value is not None]
        shape = arrays[-1][1].shape if arrays else (0, 0)
        arrays = [(step, value) for step, value in arrays if value.shape == shape]  # the writer never changes it
        if not arrays:
            raise errors.NotFoundError(f"no readable responses for layer {params.quote(layer)} in run {params.quote(run)}")
        return Responses(tuple(step for step, _ in arrays), np.stack([value for _, value in arrays]))

    def _layer_series(self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str) -> Any:
        """The layer's responses series (its listing); NotFoundError when the layer has none (a run without a pool)."""
        series = self._series(ctx, eid, run).get(metadata.tag_for(RESPONSES, layer))
        if series is None:
            raise errors.NotFoundError(f"no responses for layer {params.quote(layer)} in run {params.quote(run)} (it needs a pool=)")
        return series

    def _curve(self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str, series: Any) -> Optional[tuple[list[int], np.ndarray]]:
        """(steps, CKA of each to the latest) of the layer, or None when none of its responses can be read."""

        def compute() -> Optional[tuple[list[int], np.ndarray]]:
            try:
                responses = self._read(ctx, eid, run, layer)
            except errors.NotFoundError:
                return None
            return list(responses.steps), convergence.cka_to(responses.values)

        return self._memo(("curve", eid, run, layer, version_of(series)), compute, lambda curve: 16 * len(curve[0]) + 100 if curve else 100)

    def _layers(self, ctx: tb_context.RequestContext, eid: str, run: str) -> list[tuple[str, int, str]]:
        """(layer, index, step unit) of the run's layers with activations, in model order."""
        found = []
        for tag, series in self._reader.blob_series(ctx, eid, run).get(run, {}).items():
            try:
                described = metadata.classify(tag, series.plugin_content)
            except metadata.FormatError:
                continue
            if described is not None and described.kind == metadata.KIND_ACTIVATIONS:
                found.append((described.info.layer, described.info.index, described.info.step_unit))
        return sorted(found, key=lambda item: (item[1], item[0]))

    # Routes ----------------------------------------------------------------------------------------------------

    def layers(self, ctx: tb_context.RequestContext, eid: str, run: str, threshold: float) -> dict[str, Any]:
        """The ``convergence`` answer: every layer with responses, its steps, similarity of each to the latest, settled step."""
        tensors = self._series(ctx, eid, run)
        layers = [(layer, index, unit, tensors.get(metadata.tag_for(RESPONSES, layer))) for layer, index, unit in self._layers(ctx, eid, run)]
        layers = [layer for layer in layers if layer[3] is not None]
        curves = _READERS.map(lambda layer: self._curve(ctx, eid, run, layer[0], layer[3]), layers)
        entries = []
        for (layer, index, unit, _), curve in zip(layers, curves):
            if curve is None:
                continue
            steps, to_last = curve
            settled = convergence.settled_step(to_last, np.asarray(steps), threshold)
            entries.append({"layer": layer, "index": index, "step_unit": unit, "steps": steps, "cka": _numbers(to_last), "settled": settled})
        if not entries:
            raise errors.NotFoundError(f"no responses in run {params.quote(run)} (they are logged with a pool=)")
        return {"run": run, "threshold": threshold, "layers": entries}

    def similarity(self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str) -> dict[str, Any]:
        """The ``similarity`` answer: the layer's step x step CKA map, at most :data:`MAX_MAP_STEPS` steps."""
        series = self._layer_series(ctx, eid, run, layer)

        def compute() -> dict[str, Any]:
            responses = self._read(ctx, eid, run, layer)
            positions = sample_indices(len(responses.steps), MAX_MAP_STEPS)
            return {
                "steps": [responses.steps[position] for position in positions],
                "values": _numbers(convergence.cka_matrix(responses.values[positions])),
                "step_count": len(responses.steps),
                "subsampled": len(positions) < len(responses.steps),
            }

        answer = self._memo(("matrix", eid, run, layer, version_of(series)), compute, lambda answer: 40 * len(answer["steps"]) ** 2 + 1000)
        return {"run": run, "layer": layer, **answer}

    def selectivity(self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str, step: int, labels: Sequence) -> dict[str, Any]:
        """The ``selectivity`` answer: each filter's class means, preferred class and index at ``step``, and top-k overlap."""
        profile = self._profile(ctx, eid, run, layer, labels)
        position = _position(profile["steps"], step)
        return {
            "run": run,
            "layer": layer,
            "step": step,
            "classes": profile["classes"],
            "means": profile["means"][position],
            "preferred": profile["preferred"][position],
            "index": profile["index"][position],
            "overlap": profile["overlap"][position],
        }

    def filter_selectivity(self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str, index: int, labels: Sequence) -> dict[str, Any]:
        """The ``filter_selectivity`` answer: one filter's class means, preferred class, index and top-k overlap at every step."""
        profile = self._profile(ctx, eid, run, layer, labels)
        if index >= profile["filters"]:
            raise params.not_found("filter", index)
        column = lambda rows: [row[index] for row in rows]  # noqa: E731
        return {
            "run": run,
            "layer": layer,
            "filter": index,
            "steps": profile["steps"],
            "classes": profile["classes"],
            "means": column(profile["means"]),
            "preferred": column(profile["preferred"]),
            "index": column(profile["index"]),
            "overlap": column(profile["overlap"]),
        }

    def _profile(self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str, labels: Sequence) -> dict[str, Any]:
        """Per step: class means ``[S][F][C]``, preferred class ``[S][F]`` (its position in ``classes``), index ``[S][F]``
        and top-k overlap with the previous step ``[S][F]`` (NaN where unknown), as JSON lists."""
        series = self._layer_series(ctx, eid, run, layer)
        if not convergence.labels_are_classes(labels):
            reason = f"its pool's {len(labels)} labels are {len(set(labels))} distinct, not classes"
            raise errors.NotFoundError(f"no class selectivity for run {params.quote(run)}: {reason} (log it with pool_labels=, a class per input)")
        topk = self._topk_inputs(ctx, eid, run, layer)
        key = ("profile", eid, run, layer, version_of(series), tuple(map(str, labels)), topk[0])

        def compute() -> dict[str, Any]:
            responses = self._read(ctx, eid, run, layer)
            if len(labels) != responses.values.shape[1]:
                reason = f"{len(labels)} labels for {responses.values.shape[1]} inputs"
                raise errors.NotFoundError(f"no class selectivity for run {params.quote(run)}: its pool has {reason}")
            means, preferred, index = [], [], []
            classes: list = []
            for values in responses.values:
                found = convergence.class_selectivity(values, [str(label) for label in labels])
                classes = found.classes.tolist()
                means.append(_numbers(found.means.T))
                preferred.append(found.preferred.tolist())
                index.append(_numbers(found.index))
            overlap = _overlaps(responses.steps, topk[1], responses.values.shape[2])
            return {
                "steps": list(responses.steps),
                "classes": [str(name) for name in classes],
                "filters": responses.values.shape[2],
                "means": means,
                "preferred": preferred,
                "index": index,
                "overlap": overlap,
            }

        return self._memo(key, compute, lambda profile: 64 * profile["filters"] * len(profile["steps"]) * (len(profile["classes"]) + 4))

    def _topk_inputs(self, ctx: tb_context.RequestContext, eid: str, run: str, layer: str) -> tuple[Any, dict[int, np.ndarray]]:
        """(the topk series' version, ``{step: inputs [F, k]}``), or (None, {}) for a layer without one."""
        try:
            series = self._reader.stats(ctx, eid, run, layer, metadata.KIND_TOPK)
        except errors.NotFoundError:
            return None, {}
        inputs = series.values[..., metadata.TOPK_FIELDS.index("input")]
        return series.version, dict(zip(series.steps, inputs))


def _overlaps(steps: Sequence[int], inputs: dict[int, np.ndarray], filters: int) -> list[list[Optional[float]]]:
    """Per step, each filter's top-k overlap with the previous logged step (:func:`convergence.topk_overlap`); NaN where
    either step has no top-k (the first step, a layer without a ``topk`` series)."""
    unknown = [float("nan")] * filters
    rows = [unknown]
    for previous, current in zip(steps, steps[1:]):
        before, now = inputs.get(previous), inputs.get(current)
        if before is None or now is None or before.shape != now.shape or before.shape[0] != filters:
            rows.append(unknown)
        else:
            rows.append(_numbers(convergence.topk_overlap(before, now)))
    return rows[: len(steps)]


def _position(steps: Sequence[int], step: int) -> int:
    try:
        return list(steps).index(step)
    except ValueError:
        raise params.not_found("step", step) from None


def _numbers(values: Any) -> list:
    """A float array as JSON lists (``http_util.Respond`` writes NaN as ``"NaN"``: an undefined CKA or index)."""
    return np.asarray(values, np.float64).tolist()
