"""Rendering: a layer's output → statistics, reduced maps, gray levels, grid PNGs (NumPy and zlib only).

The stages, each in its module: :mod:`.reduce` (``draw``: axes, cap, stats, block
means, strips, normalisation), :mod:`.tiles` (gray levels, tiling) and
:mod:`.png`; :mod:`.stats` holds the per-filter statistics.
"""

from .png import decode_png, encode_all, encode_png, to_pngs
from .reduce import STRIP_HEIGHT, DrawnLayer, downsample, draw, to_maps
from .stats import filter_health, filter_stats
from .tiles import gray_levels, normalize, tile

__all__ = [
    "STRIP_HEIGHT",
    "DrawnLayer",
    "decode_png",
    "downsample",
    "draw",
    "encode_all",
    "encode_png",
    "filter_health",
    "filter_stats",
    "gray_levels",
    "normalize",
    "tile",
    "to_maps",
    "to_pngs",
]
