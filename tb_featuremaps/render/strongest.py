"""What each filter looks for: its strongest pool inputs, their receptive-field patches, and its change between steps.

The Zeiler & Fergus view (2014, Figs. 2 and 4) computed at every log step, in
NumPy only: :func:`responses` reduces a layer's output for a pool of inputs to
each filter's maximum per input (and where it lies), :func:`top_k` ranks them,
:func:`patch_sheet` crops the input under each maximum's receptive field, and
:func:`relative_change` measures how much a filter's response (or kernel)
moved since the previous step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..format import metadata
from ..format.metadata import GridLayout, ReceptiveField
from .reduce import STRIP_HEIGHT

MAX_PATCH_SIZE = 48
"""Patches larger than this (input pixels per side) are block-averaged to fit."""

POOL_BATCH = 128
"""Pool inputs per forward pass of a producer (:func:`pool_responses`) at most: bounds the memory one layer's pool outputs take."""

POOL_BATCH_VALUES = 2**21
"""Input values (all inputs, per batch) a forward pass of the pool takes at most: 128 MNIST digits fit, 13 RGB inputs
of 224 px (a batch of 128 of those took 22 GB through ResNet50 on the CPU)."""


def pool_batch(inputs: list) -> int:
    """Pool inputs per forward pass: :data:`POOL_BATCH`, fewer for large inputs (:data:`POOL_BATCH_VALUES`), at least 1."""
    values = sum(int(np.prod(np.shape(array)[1:])) for array in inputs)
    return max(1, min(POOL_BATCH, POOL_BATCH_VALUES // max(values, 1)))


MAX_POOL_PICTURE = 64
"""The pool inputs' pictures (the ``pool`` series) are block-averaged to at most this many pixels per side."""


@dataclass
class Responses:
    """Each filter's strongest response to each pool input (:func:`responses`)."""

    values: np.ndarray
    """float32 ``[N, F]``: the filter's maximum over its map for each pool input (NaN when none is finite)."""
    positions: np.ndarray
    """int32 ``[N, F, 2]``: ``(row, col)`` of that maximum in the layer's output (``row`` 0 for 1-D outputs)."""


def spatial_axes(values: np.ndarray) -> int:
    """How many spatial axes a batched output ``[N, *spatial, C]`` has."""
    return max(np.ndim(values) - 2, 0)


def responses(outputs: np.ndarray, channels_first: bool = False, max_filters: Optional[int] = None) -> Responses:
    """Reduces a layer's output for pool inputs, ``[N, *spatial, C]`` (1 or 2 spatial axes), to :class:`Responses`.

    Only the first ``max_filters`` filters are kept (those the grids draw).
    """
    values = np.asarray(outputs)
    if spatial_axes(values) not in (1, 2):
        raise ValueError(f"strongest inputs need outputs with 1 or 2 spatial axes, got shape {values.shape}")
    if channels_first:
        values = np.moveaxis(values, 1, -1)
    if values.ndim == 3:
        values = values[:, None]
    values = values[..., :max_filters]
    count, height, width, filters = values.shape
    flat = values.reshape(count, height * width, filters).astype(np.float32, copy=False)
    finite = np.isfinite(flat)
    if not finite.all():
        flat = np.where(finite, flat, -np.inf)
    where = flat.argmax(axis=1)
    best = np.take_along_axis(flat, where[:, None, :], axis=1)[:, 0]
    best = np.where(np.isfinite(best), best, np.nan).astype(np.float32)
    positions = np.stack(np.divmod(where, width), axis=-1).astype(np.int32)
    return Responses(best, positions)


def concatenate(parts: list[Responses]) -> Responses:
    """The responses of consecutive batches of the pool, as one."""
    return Responses(np.concatenate([part.values for part in parts]), np.concatenate([part.positions for part in parts]))


def pool_responses(
    forward: Callable[[list], Mapping[str, np.ndarray]], inputs: list, channels_first: Mapping[str, bool], max_filters: int
) -> dict[str, Responses]:
    """The pool (one array per model input) through ``forward`` in batches of :func:`pool_batch`, each output of a
    layer in ``channels_first`` (path → its layout) reduced to its filters' maxima per input as the batches go."""
    parts: dict[str, list] = {path: [] for path in channels_first}
    batch = pool_batch(inputs)
    for start in range(0, len(inputs[0]), batch):
        outputs = forward([array[start : start + batch] for array in inputs])
        for path, first in channels_first.items():
            parts[path].append(responses(outputs[path], first, max_filters))
    return {path: concatenate(found) for path, found in parts.items()}


def top_k(found: Responses, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each filter's ``k`` strongest pool inputs: ``(inputs [F, k], values [F, k], positions [F, k, 2])``.

    Ranked by value, descending, ties by pool index; NaN ranks last.
    """
    k = min(k, found.values.shape[0])
    ranking = np.where(np.isnan(found.values), -np.inf, found.values)
    inputs = np.argsort(-ranking, axis=0, kind="stable")[:k].T  # [F, k]
    filters = np.arange(inputs.shape[0])[:, None]
    return inputs, found.values[inputs, filters], found.positions[inputs, filters]


@dataclass
class PoolPictures:
    """The pool's (first) input as display levels, with the padding level and the value range they stand for."""

    levels: np.ndarray
    """uint8 ``[N, H, W]`` (gray) or ``[N, H, W, 3]`` (RGB); 1-D inputs have ``H = 1``."""
    padding: int
    """The level of the value 0, which convolutions pad with."""
    input_range: tuple[float, float]

    @classmethod
    def of(cls, inputs: np.ndarray, channels_first: bool = False) -> PoolPictures:
        """Pool inputs ``[N, H, W, C]`` or ``[N, L, C]`` as pictures: RGB for 3 channels, else the first channel; scaled by the finite range."""
        values = np.asarray(inputs, np.float32)
        if channels_first and values.ndim >= 3:
            values = np.moveaxis(values, 1, -1)
        if values.ndim == 3:
            values = values[:, None]
        if values.ndim != 4:
            raise ValueError(f"pool pictures need inputs [N, H, W, C] or [N, L, C], got shape {np.shape(inputs)}")
        values = values if values.shape[-1] == 3 else values[..., 0]
        finite = np.isfinite(values)
        low, high = (float(values[finite].min()), float(values[finite].max())) if finite.any() else (0.0, 0.0)
        scale = 255.0 / (high - low) if high > low else 0.0
        levels = np.clip(np.round(np.where(finite, (values - low) * scale, 0)), 0, 255).astype(np.uint8)
        padding = int(np.clip(round((0.0 - low) * scale), 0, 255))
        return cls(levels, padding, (low, high))


def _crop(pictures: PoolPictures, index: int, corner: tuple, size: tuple, field: tuple) -> np.ndarray:
    """The input window ``corner``, ``size`` of pool input ``index``: the input where the window meets the input and
    the receptive field ``field`` (``(top, left, bottom, right)``, exclusive), the padding level everywhere else."""
    picture = pictures.levels[index]
    window = np.full((*size, *picture.shape[2:]), pictures.padding, np.uint8)
    (top, left), (height, width) = corner, size
    rows = slice(max(top, field[0], 0), min(top + height, field[2], picture.shape[0]))
    cols = slice(max(left, field[1], 0), min(left + width, field[3], picture.shape[1]))
    if rows.start < rows.stop and cols.start < cols.stop:
        window[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left] = picture[rows, cols]
    return window


SUMMED_WINDOW_PIXELS = 64 * 64
"""Block-averaged patches of windows larger than this are summed from the input (:func:`_block_means`) instead of
cropped and then averaged: past it the crop costs more than the sums (a 224 px window: about 2x)."""


def _block_edges(start: int, factor: int, count: int, low: int, high: int) -> np.ndarray:
    """The ``count + 1`` edges of blocks ``[start + i·factor, start + (i+1)·factor)`` clipped to ``[low, high)`` (empty there: equal edges)."""
    return np.clip(start + factor * np.arange(count + 1), low, max(low, high))


def _block_means(pictures: PoolPictures, index: int, corner: tuple, size: tuple, field: tuple, factors: tuple[int, int]) -> np.ndarray:
    """``_shrink(_crop(pictures, index, corner, size, field), factors)`` without drawing the window: each block's sum is
    the input's pixels where the block meets the input and ``field`` (two ``reduceat`` passes over that part only)
    plus the padding level times the block's other pixels. The sums are exact integers, so the means are ``_shrink``'s."""
    picture = pictures.levels[index]
    (top, left), (fh, fw) = corner, factors
    rows = _block_edges(top, fh, size[0] // fh, max(top, field[0], 0), min(top + size[0], field[2], picture.shape[0]))
    cols = _block_edges(left, fw, size[1] // fw, max(left, field[1], 0), min(left + size[1], field[3], picture.shape[1]))
    row_counts, col_counts = np.diff(rows), np.diff(cols)
    sums = np.zeros((len(row_counts), len(col_counts), *picture.shape[2:]), np.int64)
    used_rows, used_cols = np.flatnonzero(row_counts), np.flatnonzero(col_counts)
    if used_rows.size and used_cols.size:  # the blocks that meet the input are consecutive, and so are their pixels
        first_row, first_col = rows[used_rows[0]], cols[used_cols[0]]
        part = picture[first_row : rows[used_rows[-1] + 1], first_col : cols[used_cols[-1] + 1]]
        part = np.add.reduceat(part, rows[used_rows] - first_row, axis=0, dtype=np.int32)  # a column of a block: at most 255·fh
        part = np.add.reduceat(part, cols[used_cols] - first_col, axis=1, dtype=np.int64)
        sums[used_rows[0] : used_rows[-1] + 1, used_cols[0] : used_cols[-1] + 1] = part
    outside = fh * fw - row_counts[:, None] * col_counts[None, :]
    sums += pictures.padding * outside.reshape(outside.shape + (1,) * (picture.ndim - 2))
    return np.round(sums.astype(np.float32) / np.float32(fh * fw)).astype(np.uint8)


def _shrink(patch: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    if factors == (1, 1):
        return patch
    (fh, fw), (height, width) = factors, patch.shape[:2]
    blocks = patch[: height // fh * fh, : width // fw * fw].astype(np.float32)
    blocks = blocks.reshape(height // fh, fh, width // fw, fw, *patch.shape[2:])
    return np.round(blocks.mean(axis=(1, 3))).astype(np.uint8)


@dataclass
class PatchSheet:
    """Every filter's top-k patches as one picture: filter ``f``'s rank ``r`` is tile ``f·k + r`` of ``layout`` (rows: filters)."""

    pixels: np.ndarray
    """uint8 ``[height, width]`` or ``[height, width, 3]``, gutters at :data:`metadata.GUTTER_VALUE`."""
    layout: GridLayout
    corners: np.ndarray
    """int ``[F, k, 2]``: each patch's top-left input pixel (``top``, ``left``)."""
    patch_size: tuple[int, int]
    """The patches' size in input pixels (before block averaging): the field's, at most the input's along each axis."""
    reduction: str


def patch_sheet(
    pictures: PoolPictures, inputs: np.ndarray, positions: np.ndarray, field: Optional[ReceptiveField], max_patch: int = MAX_PATCH_SIZE
) -> PatchSheet:
    """The sheet of the input patches under each filter's strongest responses.

    ``field`` None (a receptive field that cannot be computed): each patch is the
    whole input. Along an axis where the field is larger than the input, the patch
    is the whole input and the input outside the field is drawn at the padding
    level, so a patch never costs more than the input it shows. Patches larger than
    ``max_patch`` per side are block-averaged; patches that are the same (the same
    input and window) are drawn once. 1-D inputs are drawn as strips
    :data:`STRIP_HEIGHT` rows high. The sheet's ``corners`` are the fields' corners.
    """
    height, width = pictures.levels.shape[1:3]
    filters, k = inputs.shape
    if field is None:
        corners = np.zeros((filters, k, 2), np.int64)
        field_size = (height, width)
    else:
        if height == 1 and len(field.size) == 1:  # a 1-D field: one row, the field along the columns
            field = ReceptiveField((1, *field.size), (1, *field.jump), (0, *field.start))
        corners = np.asarray(field.start)[None, None] + positions * np.asarray(field.jump)[None, None]
        field_size = tuple(int(s) for s in field.size)
    clipped = tuple(side > limit for side, limit in zip(field_size, (height, width)))  # axes the patch is the whole input along
    size = tuple(limit if clip else side for side, limit, clip in zip(field_size, (height, width), clipped))
    factors = tuple(-(-side // max_patch) for side in size)
    reduction = metadata.block_mean(*factors) if factors != (1, 1) else metadata.NO_REDUCTION
    tile_height, tile_width = size[0] // factors[0], size[1] // factors[1]
    strip = height == 1
    layout = GridLayout(STRIP_HEIGHT if strip else tile_height, tile_width, filters, max(k, 1), 1)
    pixels = np.full((layout.height, layout.width, *pictures.levels.shape[3:]), metadata.GUTTER_VALUE, np.uint8)
    drawn: dict[tuple, np.ndarray] = {}
    for f in range(filters):
        for r in range(k):
            top, left = (int(v) for v in corners[f, r])
            window = (0 if clipped[0] else top, 0 if clipped[1] else left)
            seen = (max(top, 0), max(left, 0), min(top + field_size[0], height), min(left + field_size[1], width))
            key = (int(inputs[f, r]), window, seen)
            if key not in drawn:
                if factors != (1, 1) and size[0] * size[1] > SUMMED_WINDOW_PIXELS:
                    patch = _block_means(pictures, key[0], window, size, seen, factors)
                else:
                    patch = _shrink(_crop(pictures, key[0], window, size, seen), factors)
                drawn[key] = np.repeat(patch, STRIP_HEIGHT, axis=0) if strip else patch
            y, x = layout.tile_origin(f * layout.cols + r)
            pixels[y : y + layout.tile_height, x : x + layout.tile_width] = drawn[key]
    return PatchSheet(pixels, layout, corners, size, reduction)


def topk_tensor(inputs: np.ndarray, values: np.ndarray, positions: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The ``topk`` tensor ``[F, k, len(TOPK_FIELDS)]`` of one step (:data:`metadata.TOPK_FIELDS`)."""
    columns = {
        "input": inputs,
        "value": values,
        "row": positions[..., 0],
        "col": positions[..., 1],
        "top": corners[..., 0],
        "left": corners[..., 1],
    }
    return np.stack([np.asarray(columns[name], np.float32) for name in metadata.TOPK_FIELDS], axis=-1)


def relative_change(previous: Optional[np.ndarray], current: np.ndarray) -> np.ndarray:
    """Per filter (last axis), ``|current - previous| / |previous|`` over every other axis; NaN without a previous one.

    A filter that was all zero (dead) is +inf once it responds (counted as still changing), 0 while it stays zero.
    Used for a filter's response to the pool (``[N, F]``) and its kernel (``[..., F]``); float32 throughout, so a
    network's kernels cost one subtraction and two norms per step, no copies beyond them.
    """
    current = np.asarray(current, np.float32).reshape(-1, np.shape(current)[-1])
    if previous is None or np.size(previous) != current.size or np.shape(previous)[-1] != current.shape[-1]:
        return np.full(current.shape[-1], np.nan, np.float32)
    previous = np.asarray(previous, np.float32).reshape(current.shape)
    base = np.linalg.norm(previous, axis=0)
    difference = np.linalg.norm(current - previous, axis=0)
    with np.errstate(all="ignore"):
        change = difference / base  # a zero base: +inf where it moved, 0/0 where it did not
    return np.where((base == 0) & (difference == 0), np.float32(0), change).astype(np.float32)


def change_tensor(filters: int, response: Optional[np.ndarray], kernel: Optional[np.ndarray]) -> np.ndarray:
    """The ``change`` tensor ``[filters, len(CHANGE_FIELDS)]`` of one layer and step; a missing or mis-sized part is NaN."""
    columns = {"response": response, "kernel": kernel}
    return np.stack(
        [
            np.asarray(columns[name], np.float32)
            if columns[name] is not None and np.shape(columns[name]) == (filters,)
            else np.full(filters, np.nan, np.float32)
            for name in metadata.CHANGE_FIELDS
        ],
        axis=-1,
    )


def pool_picture(levels: np.ndarray) -> np.ndarray:
    """One pool input's picture for the ``pool`` series, block-averaged to :data:`MAX_POOL_PICTURE` per side."""
    factors = tuple(-(-side // MAX_POOL_PICTURE) for side in levels.shape[:2])
    return _shrink(levels, factors)
