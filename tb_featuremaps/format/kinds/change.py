"""``change/<layer>``: each drawn filter's relative change since the previous logged step (written with the activations)."""

from __future__ import annotations

import numpy as np

from .base import TensorKind

NAME = "change"

CHANGE_FIELDS = ("response", "kernel")
"""Last axis of a change tensor ``[filters, len(CHANGE_FIELDS)]``: each filter's relative change since the previous logged step.

``response``: ``|r_t - r_prev| / |r_prev|`` (Euclidean norms) of the filter's
response to the pool, ``r`` = its maximum activation for each pool input;
``kernel``: the same of the filter's kernel (all its input channels). NaN at a
run's first step, for a response without a pool, a kernel without weights.
"""

CHANGING_THRESHOLD = 0.05
"""A filter is *still changing* at a step when its change (``response``, else ``kernel``) exceeds this (5 % per logged interval)."""

MEASURE = ("response", "kernel")
"""The fields a filter's change is taken from: the first of them that is known (not NaN)."""

KIND = TensorKind(
    NAME,
    "each drawn filter's relative change since the previous logged step, of its response to the pool and of its kernel, float32 [filters, fields]",
    {"changing_threshold": CHANGING_THRESHOLD, "measure": list(MEASURE)},
    fields=CHANGE_FIELDS,
    axes=("filters",),
    grid="activations",
    what="change since the previous step",
)


def filter_change(change: np.ndarray) -> np.ndarray:
    """Each filter's change (:data:`MEASURE`: its ``response`` change where known, else its ``kernel`` change): ``[..., filters]``."""
    change = np.asarray(change, np.float64)
    measure = np.full(change.shape[:-1], np.nan)
    for name in reversed(MEASURE):
        value = change[..., CHANGE_FIELDS.index(name)]
        measure = np.where(np.isnan(value), measure, value)
    return measure


def changing_filters(change: np.ndarray) -> float:
    """The fraction of filters still changing (:data:`CHANGING_THRESHOLD`) in a change tensor ``[filters, fields]``; NaN when unknown.

    A filter's ``response`` change is used where known (not NaN), else its ``kernel`` change; +inf (a dead
    filter come alive) counts as changing.
    """
    measure = filter_change(change)
    known = ~np.isnan(measure)
    return float((measure[known] > CHANGING_THRESHOLD).mean()) if known.any() else float("nan")
