"""Turns a batch of feature maps into per-filter statistics and tiled grid images.

Pure NumPy (plus Pillow for PNG), independent of Keras, so the same code serves
every Keras backend and the benchmarks can time each stage on its own.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .metadata import DEAD_THRESHOLD, GUTTER_VALUE, GridLayout


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
        middle = values.shape[1] // 2
        values = values[:, middle]
        reduction = f"middle slice {middle} of depth {values.shape[1]}"
    elif values.ndim > 5:
        raise ValueError(f"cannot draw outputs with {values.ndim - 2} spatial axes (shape {values.shape})")
    return values, reduction


def filter_stats(maps: np.ndarray) -> np.ndarray:
    """Per probe and filter: ``[min, max, mean, std, nonfinite]`` as float32 ``[P, F, 5]``."""
    maps = maps.astype(np.float32, copy=False)
    flat = maps.reshape(maps.shape[0], -1, maps.shape[-1])  # [P, HW, F]
    finite = np.isfinite(flat)
    if finite.all():
        stats = np.stack(
            [flat.min(axis=1), flat.max(axis=1), flat.mean(axis=1), flat.std(axis=1), np.zeros(flat.shape[::2], np.float32)],
            axis=-1,
        )
        return stats.astype(np.float32)
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
    magnitude = np.fmax(np.abs(stats[..., 0]), np.abs(stats[..., 1]))
    dead = (magnitude < DEAD_THRESHOLD).all(axis=0)
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


def normalize(maps: np.ndarray, stats: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Scales each filter map to 0..255 by its own finite min and max.

    Returns uint8 maps ``[P, H, W, F]`` and, when any value is not finite, a
    uint8 alpha mask (0 where NaN/Inf) of the same shape, else None.
    """
    low = stats[:, None, None, :, 0]
    span = stats[:, None, None, :, 1] - low
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = (maps - low) * np.where(span > 0, 255.0 / span, 0.0)
    finite = np.isfinite(scaled)
    if finite.all():
        return np.clip(scaled, 0, 255).astype(np.uint8), None
    pixels = np.clip(np.where(finite, scaled, 0), 0, 255).astype(np.uint8)
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


def encode_png(pixels: np.ndarray, alpha: np.ndarray | None = None, compress_level: int = 1) -> bytes:
    """PNG bytes of a uint8 gray ``[H, W]`` or RGB ``[H, W, 3]`` image (gray+alpha with ``alpha``)."""
    if pixels.ndim == 3:
        image = Image.fromarray(pixels, "RGB")
    elif alpha is None:
        image = Image.fromarray(pixels, "L")
    else:
        image = Image.fromarray(np.stack([pixels, alpha], axis=-1), "LA")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """Decodes PNG bytes to uint8 ``[H, W]`` (gray) or ``[H, W, C]``."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def render(maps: np.ndarray, layout: GridLayout, stats: np.ndarray | None = None) -> list[bytes]:
    """One grid PNG per probe for maps ``[P, h, w, F]`` (already reduced and capped).

    ``stats`` are :func:`filter_stats` of ``maps`` when the caller has them.
    """
    if stats is None:
        stats = filter_stats(maps)
    pixels, alpha = normalize(maps, stats)
    grids = tile(pixels, layout)
    if alpha is None:
        return [encode_png(grid) for grid in grids]
    masks = tile(alpha, layout, fill=255)
    return [encode_png(grid, mask) for grid, mask in zip(grids, masks)]
