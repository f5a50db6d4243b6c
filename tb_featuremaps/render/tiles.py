"""Gray levels by the format's rule and their arrangement into grid images."""

from __future__ import annotations

import numpy as np

from ..format.metadata import GUTTER_VALUE, GridLayout, tile_ranges
from .reduce import DrawnLayer


def normalize(maps: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Gray levels by the format's rule, ``g = round((v − lo)·255/(hi − lo))`` (0 where ``hi == lo``).

    ``lo``/``hi`` are ``[P, F]`` (:func:`metadata.tile_ranges`). Returns uint8 maps
    ``[P, H, W, F]`` and, when any value is not finite, a uint8 alpha mask (0
    where NaN/Inf) of the same shape, else None.
    """
    low = lo[:, None, None, :]
    span = hi[:, None, None, :] - low
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = (maps - low) * np.where(span > 0, 255.0 / span, 0.0)
    finite = np.isfinite(scaled)
    if finite.all():
        return np.clip(np.rint(scaled), 0, 255).astype(np.uint8), None
    pixels = np.clip(np.rint(np.where(finite, scaled, 0)), 0, 255).astype(np.uint8)
    return pixels, np.where(finite, 255, 0).astype(np.uint8)


def tile(pixels: np.ndarray, layout: GridLayout, fill: int = GUTTER_VALUE) -> np.ndarray:
    """Arranges uint8 ``[P, h, w, F]`` filter maps into ``[P, height, width]`` grids."""
    probes, height, width, filters = pixels.shape
    gutter = layout.gutter
    cells = layout.rows * layout.cols
    padded = np.full((probes, cells, height + gutter, width + gutter), fill, np.uint8)
    padded[:, :filters, :height, :width] = np.moveaxis(pixels, -1, 1)
    grid = padded.reshape(probes, layout.rows, layout.cols, height + gutter, width + gutter)
    grid = grid.transpose(0, 1, 3, 2, 4).reshape(probes, layout.rows * (height + gutter), layout.cols * (width + gutter))
    return grid[:, : layout.height, : layout.width]


def gray_levels(layer: DrawnLayer, layout: GridLayout) -> tuple[np.ndarray, np.ndarray | None]:
    """The uint8 grids ``[P, height, width]`` of ``layer`` and their alpha masks (None when all finite)."""
    lo, hi = tile_ranges(layer.normalization, layer.stats)
    pixels, alpha = normalize(layer.maps, lo, hi)
    return tile(pixels, layout), None if alpha is None else tile(alpha, layout, fill=255)
