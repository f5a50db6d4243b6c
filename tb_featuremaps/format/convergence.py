"""Layer convergence, class selectivity and top-k stability from a layer's pool responses (NumPy only).

A layer's *responses* at a step are ``[N, F]``: each drawn filter's maximum over
its map for each of the ``N`` pool inputs (the ``responses/`` series,
docs/format.md). From them, where they are shown (reader, CLI, plugin), never
stored per pair:

- :func:`linear_cka`, :func:`cka_matrix`, :func:`cka_to`: linear centred kernel
  alignment (Kornblith et al. 2019) between the responses at two steps: 1 for the
  same representation up to an orthogonal rotation and an isotropic scaling of the
  filters, 0 for unrelated ones; :func:`settled_step`, the step from which a
  layer's similarity to a reference (its latest step) stays above a threshold.
- :func:`class_means`, :func:`selectivity`: each filter's class-conditional mean
  response and its class selectivity index (Morcos et al. 2018).
- :func:`topk_overlap`: the Jaccard overlap of each filter's top-k pool inputs
  between two steps.

Non-finite responses (a filter whose map held no finite value for an input) make
a CKA NaN (the step's row and column of a matrix); selectivity and overlap skip
them as documented per function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

SETTLED_THRESHOLD = 0.95
"""Default similarity to the latest step from which a layer counts as settled (:func:`settled_step`)."""

_BLOCK_VALUES = 2**24
"""Values (float32) one block of :func:`cka_matrix` may hold: bounds its memory to about 64 MB whatever ``S``, ``N``, ``F``."""


def _centred(responses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Responses ``[..., N, F]`` as float64 with each column's mean over ``N`` removed, and which leading entries are finite."""
    values = np.asarray(responses, np.float64)
    finite = np.isfinite(values).all(axis=(-2, -1))
    values = np.where(np.isfinite(values), values, 0.0)
    return values - values.mean(axis=-2, keepdims=True), finite


def _ratio(cross: np.ndarray, own_a: np.ndarray, own_b: np.ndarray) -> np.ndarray:
    """``cross / sqrt(own_a ⊗ own_b)``: NaN where either own term is 0 (a constant representation)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return cross / np.sqrt(np.multiply.outer(own_a, own_b))


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two response matrices of the same ``N`` inputs, ``x [N, F1]`` and ``y [N, F2]``.

    ``‖Yᵀ X‖²_F / (‖Xᵀ X‖_F ‖Yᵀ Y‖_F)`` with every column centred (Kornblith et al.
    2019, eq. 5), in float64: in 0..1, 1 when ``y`` is ``x`` rotated (orthogonally)
    and scaled. NaN when either matrix is constant over the inputs (nothing to
    compare) or holds a non-finite value.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cka needs two [N, F] matrices of the same N inputs; got shapes {x.shape} and {y.shape}")
    (a, finite_a), (b, finite_b) = _centred(x), _centred(y)
    if not (finite_a and finite_b):
        return float("nan")
    cross = np.sum((b.T @ a) ** 2)
    return float(_ratio(cross, np.sum((a.T @ a) ** 2), np.sum((b.T @ b) ** 2)))


def _hsic_block(a: np.ndarray, b: np.ndarray, gram: bool) -> np.ndarray:
    """``‖b_tᵀ a_s‖²_F`` for every ``s`` of ``a [s, N, F]`` and ``t`` of ``b [t, N, F]`` (both centred): ``[s, t]``.

    ``gram``: through the inputs' Gram matrices ``a_s a_sᵀ`` (``N × N``, flattened),
    else through the filters' cross products ``a_sᵀ b_t`` (``F × F``).
    """
    if gram:
        ka = np.einsum("snf,smf->snm", a, a).reshape(len(a), -1)
        kb = ka if b is a else np.einsum("snf,smf->snm", b, b).reshape(len(b), -1)
        return ka @ kb.T
    steps_a, count, filters = a.shape
    cross = a.transpose(0, 2, 1).reshape(steps_a * filters, count) @ b.transpose(1, 0, 2).reshape(count, -1)
    return (cross.reshape(steps_a, filters, len(b), filters) ** 2).sum(axis=(1, 3))


def cka_matrix(stack: np.ndarray) -> np.ndarray:
    """Linear CKA between every two steps of a layer's responses ``[S, N, F]``: float64 ``[S, S]``, symmetric.

    Each step is centred once; a pair costs ``F²·N`` operations (cross products of
    the filters, one matrix product per block of steps), or ``N²`` through the
    inputs' Gram matrices when ``F > N``, in blocks of steps bounded in memory; the products are float32 (CKA within about
    10⁻⁶ of float64's; :func:`cka_to` and :func:`linear_cka` are float64). A step that is constant or holds a
    non-finite response has a NaN row and column (its diagonal too); every other
    diagonal entry is 1.
    """
    stack = np.asarray(stack)
    if stack.ndim != 3:
        raise ValueError(f"cka_matrix needs responses [steps, N, F]; got shape {stack.shape}")
    centred, finite = _centred(stack)
    centred = centred.astype(np.float32)  # centred in float64; the products in float32 (relative error about 10⁻⁶)
    steps, count, filters = centred.shape
    if not count or not filters:
        return np.full((steps, steps), np.nan)
    gram = filters > count  # cross products are one matrix product per block: faster in practice unless F > N
    if gram:
        block = _BLOCK_VALUES // (count * count)
    else:
        block = min(int(np.sqrt(_BLOCK_VALUES / (filters * filters))), _BLOCK_VALUES // (count * filters))
    block = max(1, min(steps, block))
    hsic = np.empty((steps, steps), np.float64)  # each entry a float32 product, compared in float64
    for start in range(0, steps, block):
        a = centred[start : start + block]
        for other in range(start, steps, block):
            b = a if other == start else centred[other : other + block]
            part = _hsic_block(a, b, gram)
            hsic[start : start + len(a), other : other + len(b)] = part
            hsic[other : other + len(b), start : start + len(a)] = part.T
    own = np.diag(hsic).copy()
    result = _ratio(hsic, own, own)
    result[~finite] = np.nan
    result[:, ~finite] = np.nan
    return result


def cka_to(stack: np.ndarray, reference: int = -1) -> np.ndarray:
    """Linear CKA of each step of ``stack [S, N, F]`` to step position ``reference`` (default the latest): float64 ``[S]``.

    The same values as that column of :func:`cka_matrix`, at ``S`` pairs' cost (what
    the bottom-up chart of every layer needs).
    """
    stack = np.asarray(stack)
    if stack.ndim != 3 or not len(stack):
        raise ValueError(f"cka_to needs responses [steps, N, F] with at least one step; got shape {stack.shape}")
    centred, finite = _centred(stack)
    target = centred[reference]
    count, filters = target.shape
    if not count or not filters:
        return np.full(len(stack), np.nan)
    if filters <= count:  # F × F cross products: F²·N a step
        cross = ((target.T @ centred) ** 2).sum(axis=(1, 2))
        own = ((centred.transpose(0, 2, 1) @ centred) ** 2).sum(axis=(1, 2))
    else:  # N × N Gram matrices: N²·F a step
        kernel = target @ target.T
        cross = np.array([np.sum((step @ step.T) * kernel) for step in centred])
        own = np.array([np.sum((step @ step.T) ** 2) for step in centred])
    result = _ratio(cross, own, own[reference])
    result[~finite | ~finite[reference]] = np.nan
    return result


def settled_step(similarity: np.ndarray, steps: np.ndarray, threshold: float = SETTLED_THRESHOLD) -> Optional[int]:
    """The first of ``steps`` from which ``similarity`` (to the latest step, :func:`cka_to`) stays ≥ ``threshold``.

    Every later step's similarity is ≥ ``threshold`` too; a NaN counts as below it.
    None when the latest step's own similarity is below it (NaN: a constant layer)
    or there are no steps.
    """
    similarity, steps = np.asarray(similarity, np.float64), np.asarray(steps)
    if similarity.shape != steps.shape or similarity.ndim != 1:
        raise ValueError(f"settled_step needs one similarity per step; got shapes {similarity.shape} and {steps.shape}")
    below = np.flatnonzero(~(similarity >= threshold))
    if not len(steps) or (len(below) and below[-1] == len(steps) - 1):
        return None
    return int(steps[below[-1] + 1]) if len(below) else int(steps[0])


def class_means(responses: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each filter's mean rectified response per class: ``(classes [C], means float64 [C, F])``.

    ``responses [N, F]`` are taken as ``max(r, 0)`` (a response below 0 counts as 0,
    as a ReLU after the layer makes it: for a layer followed by one, that ReLU's
    response, since a ReLU commutes with the maximum over space), so every mean is
    ≥ 0 and :func:`selectivity` lies in 0..1. ``classes`` are the distinct
    ``labels [N]``, sorted; a class's mean leaves out its non-finite responses (NaN
    when it has none).
    """
    responses, labels = np.asarray(responses, np.float64), np.asarray(labels)
    if responses.ndim != 2 or labels.shape != responses.shape[:1]:
        raise ValueError(f"class_means needs responses [N, F] and one label per input [N]; got shapes {responses.shape} and {labels.shape}")
    classes, which = np.unique(labels, return_inverse=True)
    finite = np.isfinite(responses)
    rectified = np.where(finite, np.maximum(responses, 0.0), 0.0)
    sums = np.zeros((len(classes), responses.shape[1]))
    counts = np.zeros((len(classes), responses.shape[1]))
    np.add.at(sums, which, rectified)
    np.add.at(counts, which, finite)
    with np.errstate(invalid="ignore", divide="ignore"):
        return classes, sums / counts


def selectivity(means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each filter's preferred class and class selectivity index from its class means ``[C, F]`` (:func:`class_means`).

    ``(μmax − μ−max) / (μmax + μ−max)`` (Morcos et al. 2018): ``μmax`` the largest
    class mean, ``μ−max`` the mean of the other classes' means. Returns
    ``(preferred int [F], index float64 [F])``: the class position (into ``classes``)
    of ``μmax`` (the first on ties), and the index, 1 for a filter that responds to
    one class only, 0 for one that responds to all alike. Classes with a NaN mean
    are left out; a filter with no class or a zero denominator (silent on every
    class) has preferred −1 and index NaN; one class alone gives index NaN.
    """
    means = np.asarray(means, np.float64)
    if means.ndim != 2:
        raise ValueError(f"selectivity needs class means [C, F]; got shape {means.shape}")
    known = np.isfinite(means)
    present = known.sum(axis=0)
    ranked = np.where(known, means, -np.inf)
    preferred = ranked.argmax(axis=0) if len(means) else np.zeros(means.shape[1], np.int64)
    top = np.take_along_axis(ranked, preferred[None], axis=0)[0] if len(means) else np.full(means.shape[1], -np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        others = (np.where(known, means, 0.0).sum(axis=0) - np.where(np.isfinite(top), top, 0.0)) / (present - 1)
        index = (top - others) / (top + others)
    silent = (present == 0) | ~(top + others > 0)
    index = np.where(silent | (present < 2), np.nan, index)
    return np.where(silent, -1, preferred).astype(np.int64), index


def topk_overlap(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Per filter, the Jaccard overlap ``|A ∩ B| / |A ∪ B|`` of its top-k pool inputs at two steps: float64 ``[F]``.

    ``previous [F, K1]`` and ``current [F, K2]`` hold pool indices (``topk``'s
    ``input``, e.g. :meth:`StrongestLog.inputs`); negative entries (unknown) are left
    out, repeated ones count once. 1: the same inputs (in any order), 0: none in
    common; NaN for a filter with no known input at either step.
    """
    previous, current = np.asarray(previous), np.asarray(current)
    if previous.ndim != 2 or current.ndim != 2 or previous.shape[0] != current.shape[0]:
        raise ValueError(f"topk_overlap needs [F, k] input indices for the same F filters; got shapes {previous.shape} and {current.shape}")
    first_a, first_b = _first_known(previous), _first_known(current)
    shared = ((previous[:, :, None] == current[:, None, :]) & first_a[:, :, None] & first_b[:, None, :]).sum(axis=(1, 2))
    union = first_a.sum(axis=1) + first_b.sum(axis=1) - shared
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, shared / union, np.nan)


def _first_known(inputs: np.ndarray) -> np.ndarray:
    """Which entries of ``inputs [F, k]`` are known (≥ 0) and not a repeat of an earlier one in their row."""
    repeat = np.triu(inputs[:, :, None] == inputs[:, None, :], k=1).any(axis=1)
    return (inputs >= 0) & ~repeat


def labels_are_classes(labels: Sequence) -> bool:
    """Whether pool labels name classes, so that selectivity means something: at least 2 distinct labels and at most
    half as many as inputs (2 inputs a class on average). The default labels, each input's index, do not."""
    distinct = len(set(labels))
    return 2 <= distinct <= len(labels) / 2


def mean_selectivity(responses: np.ndarray, labels: Sequence) -> float:
    """A layer's mean class selectivity index over its filters at one step (the Scalars copy); NaN when no filter has one."""
    index = class_selectivity(responses, labels).index
    return float(np.nanmean(index)) if np.isfinite(index).any() else float("nan")


@dataclass(frozen=True)
class Selectivity:
    """A layer's class selectivity at one step (:func:`class_selectivity`)."""

    classes: np.ndarray
    """``[C]``: the distinct labels, sorted."""
    means: np.ndarray
    """float64 ``[C, F]``: each filter's mean rectified response per class (:func:`class_means`)."""
    preferred: np.ndarray
    """int ``[F]``: each filter's preferred class, a position into ``classes`` (−1: none)."""
    index: np.ndarray
    """float64 ``[F]``: each filter's selectivity index in 0..1 (NaN: none, :func:`selectivity`)."""


def class_selectivity(responses: np.ndarray, labels: Sequence) -> Selectivity:
    """:func:`class_means` and :func:`selectivity` of one step's responses ``[N, F]`` with the pool's labels ``[N]``."""
    classes, means = class_means(responses, np.asarray(labels))
    return Selectivity(classes, means, *selectivity(means))
