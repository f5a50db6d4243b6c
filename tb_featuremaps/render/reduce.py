"""From a layer's output to the maps that are drawn: layout of axes, filter cap, block means, strips.

``draw`` is the per-layer pipeline up to the pixels; every producer calls it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..format import metadata
from ..format.metadata import GridLayout
from .stats import filter_stats

STRIP_HEIGHT = 8
"""Rows each 1-D map (``Conv1D`` output, 1-D kernel) is repeated into, so it reads as a strip."""


def to_maps(values: np.ndarray, channels_first: bool = False) -> tuple[np.ndarray, str]:
    """Brings a layer output ``[batch, ...]`` to ``[batch, height, width, filters]``.

    Spatial ranks 0, 1 and 2 map to 1x1, 1xL and HxW tiles; for 3 spatial axes
    (Conv3D) the middle slice of the first one is kept. Returns the maps and a
    short description of the reduction applied ("none" if none).
    """
    values = np.asarray(values)
    if values.ndim < 2:
        raise ValueError(f"expected a batched output with a channel axis, got shape {values.shape}")
    if channels_first and values.ndim >= 3:
        values = np.moveaxis(values, 1, -1)
    reduction = metadata.NO_REDUCTION
    if values.ndim == 2:
        values = values[:, None, None, :]
    elif values.ndim == 3:
        values = values[:, None, :, :]
    elif values.ndim == 5:
        depth = values.shape[1]
        values = values[:, depth // 2]
        reduction = metadata.middle_slice(depth // 2, depth)
    elif values.ndim > 5:
        raise ValueError(f"cannot draw outputs with {values.ndim - 2} spatial axes (shape {values.shape})")
    return values, reduction


def downsample(maps: np.ndarray, max_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Block-averages ``[P, H, W, F]`` so that no spatial axis exceeds ``max_size``.

    Each axis shrinks by its own integer factor (trailing rows or columns that do
    not fill a block are dropped). Returns the maps and the two factors.
    """
    factors = tuple(-(-size // max_size) for size in maps.shape[1:3])
    if factors == (1, 1):
        return maps, factors
    (fh, fw), (height, width) = factors, maps.shape[1:3]
    blocks = maps[:, : height // fh * fh, : width // fw * fw]
    blocks = blocks.reshape(maps.shape[0], height // fh, fh, width // fw, fw, maps.shape[-1])
    return blocks.mean(axis=(2, 4)), factors


@dataclass
class DrawnLayer:
    """One layer's output made ready to draw (see :func:`draw`)."""

    maps: np.ndarray
    """float ``[P, h, w, F]`` as drawn: capped, reduced, 1-D maps repeated into strips."""
    stats: np.ndarray
    """:func:`filter_stats` ``[P, F, 5]`` of the capped maps at full resolution."""
    filters_total: int
    reduction: str
    normalization: str

    def layout(self) -> GridLayout:
        """The near-square grid layout of these tiles."""
        return GridLayout.for_tiles(self.maps.shape[-1], self.maps.shape[1], self.maps.shape[2])


def draw(values: np.ndarray, channels_first: bool = False, max_filters: int = 128, max_tile_size: int = 64) -> DrawnLayer:
    """The per-layer pipeline up to the pixels: maps, cap, stats, block mean, strips, normalisation.

    1x1 maps are normalised per layer (a per-filter range would be one value);
    1-D maps are drawn as strips :data:`STRIP_HEIGHT` rows high.
    """
    maps, reduction = to_maps(values, channels_first)
    total = maps.shape[-1]
    maps = maps[..., :max_filters]
    stats = filter_stats(maps)
    one_dimensional = maps.shape[1] == 1 and np.ndim(values) == 3
    maps, factors = downsample(maps, max_tile_size)
    if factors != (1, 1):
        reduction = metadata.joined(reduction, metadata.block_mean(*factors))
    if one_dimensional:
        maps = np.repeat(maps, STRIP_HEIGHT, axis=1)
    normalization = "per_layer" if maps.shape[1:3] == (1, 1) else "per_filter"
    return DrawnLayer(maps, stats, int(total), reduction, normalization)
