"""``stats/<layer>``: each drawn filter's statistics per probe, at full resolution (written with the activations)."""

from __future__ import annotations

import numpy as np

from .base import TensorKind

NAME = "stats"

STATS_FIELDS = ("min", "max", "mean", "std", "nonfinite")
"""Last axis of a stats tensor ``[probes, filters, len(STATS_FIELDS)]``.

``min``/``max``/``mean``/``std`` are taken over the finite values of one
filter's map for one probe (NaN when none is finite); ``nonfinite`` is the
fraction of NaN/Inf values.
"""

DEAD_THRESHOLD = 1e-6
"""A filter is dead at a step when ``max(|min|, |max|)`` is below this for every probe."""

KIND = TensorKind(
    NAME,
    "each drawn filter's min, max, mean, std and non-finite fraction per probe, float32 [probes, filters, fields]",
    {"dead_threshold": DEAD_THRESHOLD},
    fields=STATS_FIELDS,
    axes=("probes", "filters"),
    grid="activations",
    what="statistics",
)


def dead_filters(stats: np.ndarray) -> np.ndarray:
    """Which filters are dead (see :data:`DEAD_THRESHOLD`): stats ``[..., probes, filters, fields]`` → bool ``[..., filters]``."""
    low, high = stats[..., STATS_FIELDS.index("min")], stats[..., STATS_FIELDS.index("max")]
    return (np.fmax(np.abs(low), np.abs(high)) < DEAD_THRESHOLD).all(axis=-2)
