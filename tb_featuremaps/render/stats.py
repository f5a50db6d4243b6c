"""Per-filter statistics of a layer's maps, and the filter-health counts made from them."""

from __future__ import annotations

import numpy as np

from ..format.metadata import DEAD_THRESHOLD, STATS_FIELDS, dead_filters


def _by_field(fields: dict[str, np.ndarray]) -> np.ndarray:
    """The named per-filter arrays ``[P, F]`` stacked in :data:`STATS_FIELDS` order: float32 ``[P, F, fields]``."""
    return np.stack([fields[name] for name in STATS_FIELDS], axis=-1).astype(np.float32, copy=False)


def filter_stats(maps: np.ndarray) -> np.ndarray:
    """Per probe and filter, the fields of :data:`STATS_FIELDS` (min, max, mean, std, nonfinite): float32 ``[P, F, fields]``."""
    maps = maps.astype(np.float32, copy=False)
    flat = maps.reshape(maps.shape[0], -1, maps.shape[-1])  # [P, HW, F]
    low, high = flat.min(axis=1), flat.max(axis=1)
    if np.isfinite(low).all() and np.isfinite(high).all():  # NaN and ±Inf would show in min or max
        mean = flat.mean(axis=1)
        centred = flat - mean[:, None, :]
        std = np.sqrt(np.einsum("phf,phf->pf", centred, centred) / flat.shape[1])
        return _by_field({"min": low, "max": high, "mean": mean, "std": std, "nonfinite": np.zeros_like(low)})
    finite = np.isfinite(flat)
    count = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(finite, flat, np.inf).min(axis=1)
        high = np.where(finite, flat, -np.inf).max(axis=1)
        mean = np.where(finite, flat, 0).sum(axis=1) / count
        var = np.where(finite, (flat - mean[:, None, :]) ** 2, 0).sum(axis=1) / count
    none = count == 0
    low[none] = high[none] = np.nan
    nonfinite = 1.0 - count / flat.shape[1]
    return _by_field({"min": low, "max": high, "mean": mean, "std": np.sqrt(var), "nonfinite": nonfinite})


def filter_health(stats: np.ndarray) -> dict[str, int]:
    """Counts of dead and saturated filters from :func:`filter_stats` output.

    Dead: ``max(|min|, |max|)`` below :data:`DEAD_THRESHOLD` for every probe.
    Saturated: not dead, yet constant (``std`` below the threshold) on every probe.
    """
    dead = dead_filters(stats)
    constant = (stats[..., STATS_FIELDS.index("std")] < DEAD_THRESHOLD).all(axis=0)
    return {"dead_filters": int(dead.sum()), "saturated_filters": int((constant & ~dead).sum())}
