"""Turns a batch of feature maps into per-filter statistics and tiled grid images.

Pure NumPy (zlib writes the PNGs, Pillow only reads them back), independent of
Keras, so the same code serves every Keras backend and the benchmarks can time
each stage on its own.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

from .metadata import DEAD_THRESHOLD, GUTTER_VALUE, GridLayout, dead_filters, tile_ranges

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2}  # channels -> PNG colour type: gray, gray + alpha, RGB
STRIP_HEIGHT = 8
"""Rows each 1-D map (``Conv1D`` output, 1-D kernel) is repeated into, so it reads as a strip."""
_encoders: Optional[tuple[int, ThreadPoolExecutor]] = None  # (owning process id, pool)


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
    reduction = "none"
    if values.ndim == 2:
        values = values[:, None, None, :]
    elif values.ndim == 3:
        values = values[:, None, :, :]
    elif values.ndim == 5:
        depth = values.shape[1]
        values = values[:, depth // 2]
        reduction = f"middle slice {depth // 2} of depth {depth}"
    elif values.ndim > 5:
        raise ValueError(f"cannot draw outputs with {values.ndim - 2} spatial axes (shape {values.shape})")
    return values, reduction


def filter_stats(maps: np.ndarray) -> np.ndarray:
    """Per probe and filter: ``[min, max, mean, std, nonfinite]`` as float32 ``[P, F, 5]``."""
    maps = maps.astype(np.float32, copy=False)
    flat = maps.reshape(maps.shape[0], -1, maps.shape[-1])  # [P, HW, F]
    low, high = flat.min(axis=1), flat.max(axis=1)
    if np.isfinite(low).all() and np.isfinite(high).all():  # NaN and ±Inf would show in min or max
        mean = flat.mean(axis=1)
        centred = flat - mean[:, None, :]
        std = np.sqrt(np.einsum("phf,phf->pf", centred, centred) / flat.shape[1])
        return np.stack([low, high, mean, std, np.zeros_like(low)], axis=-1).astype(np.float32, copy=False)
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
    return np.stack([low, high, mean, np.sqrt(var), nonfinite], axis=-1).astype(np.float32)


def filter_health(stats: np.ndarray) -> dict[str, int]:
    """Counts of dead and saturated filters from :func:`filter_stats` output.

    Dead: ``max(|min|, |max|)`` below :data:`DEAD_THRESHOLD` for every probe.
    Saturated: not dead, yet constant (``std`` below the threshold) on every probe.
    """
    dead = dead_filters(stats)
    constant = (stats[..., 3] < DEAD_THRESHOLD).all(axis=0)
    return {"dead_filters": int(dead.sum()), "saturated_filters": int((constant & ~dead).sum())}


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


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return b"".join((struct.pack(">I", len(body)), kind, body, struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))))


def encode_png(pixels: np.ndarray, alpha: np.ndarray | None = None) -> bytes:
    """PNG bytes of a uint8 gray ``[H, W]`` or RGB ``[H, W, 3]`` image (gray+alpha with ``alpha``).

    Written with zlib directly: no row filter and run-length deflate, which on
    feature maps (flat and zero areas) is about 3x faster than Pillow's adaptive
    row filters, and the files are smaller too.
    """
    if alpha is not None:
        pixels = np.stack([pixels, alpha], axis=-1)
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = np.zeros((height, 1 + width * channels), np.uint8)  # each row starts with filter type 0 (none)
    rows[:, 1:] = pixels.reshape(height, -1)
    compressor = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = compressor.compress(rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOR_TYPES[channels], 0, 0, 0)
    return b"".join((_PNG_SIGNATURE, _png_chunk(b"IHDR", header), _png_chunk(b"IDAT", data), _png_chunk(b"IEND", b"")))


def decode_png(data: bytes) -> np.ndarray:
    """Decodes PNG bytes to uint8 ``[H, W]`` (gray) or ``[H, W, C]``."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


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
        block = f"block mean {factors[0]}x{factors[1]}"
        reduction = block if reduction == "none" else f"{reduction}; {block}"
    if one_dimensional:
        maps = np.repeat(maps, STRIP_HEIGHT, axis=1)
    normalization = "per_layer" if maps.shape[1:3] == (1, 1) else "per_filter"
    return DrawnLayer(maps, stats, int(total), reduction, normalization)


def gray_levels(layer: DrawnLayer, layout: GridLayout) -> tuple[np.ndarray, np.ndarray | None]:
    """The uint8 grids ``[P, height, width]`` of ``layer`` and their alpha masks (None when all finite)."""
    lo, hi = tile_ranges(layer.normalization, layer.stats)
    pixels, alpha = normalize(layer.maps, lo, hi)
    return tile(pixels, layout), None if alpha is None else tile(alpha, layout, fill=255)


def render(layer: DrawnLayer, layout: GridLayout) -> list[bytes]:
    """One grid PNG per probe of ``layer``, laid out by ``layout``."""
    return encode_all(*gray_levels(layer, layout))


def encode_all(images: np.ndarray, masks: np.ndarray | None = None) -> list[bytes]:
    """:func:`encode_png` of each image (with its alpha mask), in parallel threads: zlib releases the GIL."""
    global _encoders
    if _encoders is None or _encoders[0] != os.getpid():  # a forked child needs threads of its own
        _encoders = (os.getpid(), ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="tb_featuremaps_png"))
    return list(_encoders[1].map(encode_png, images, [None] * len(images) if masks is None else masks))
