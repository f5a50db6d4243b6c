"""The on-disk format shared by the callback (writer) and the plugin (reader).

Everything both sides must agree on is reached from here: the plugin name, the tag scheme,
the grid content (:class:`LayerInfo`, :class:`GridLayout`), the gray-level rule and
:func:`classify`. Each series kind's own rules (fields, rank, thresholds) live in its module
of :mod:`.kinds`, whose names this module re-exports (``metadata.STATS_FIELDS``, ...).
``docs/format.md`` documents the same in prose.

This module imports neither TensorFlow nor Keras, so TensorBoard can load the
plugin on a machine that has neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np
from tensorboard.compat.proto import summary_pb2

from . import kinds
from .content import FORMAT_VERSION as FORMAT_VERSION
from .content import PLUGIN_NAME as PLUGIN_NAME
from .content import FormatError as FormatError
from .content import align_fields as align_fields
from .content import markdown_text as markdown_text
from .content import parse_content as parse_content
from .content import tag_for as tag_for
from .kinds.change import CHANGE_FIELDS as CHANGE_FIELDS
from .kinds.change import CHANGING_THRESHOLD as CHANGING_THRESHOLD
from .kinds.change import changing_filters as changing_filters
from .kinds.pool import pool_metadata as pool_metadata
from .kinds.probes import probes_metadata as probes_metadata
from .kinds.stats import DEAD_THRESHOLD as DEAD_THRESHOLD
from .kinds.stats import STATS_FIELDS as STATS_FIELDS
from .kinds.stats import dead_filters as dead_filters
from .kinds.strongest import INPUT_RANGE as INPUT_RANGE
from .kinds.strongest import ReceptiveField as ReceptiveField
from .kinds.strongest import StrongestExtra as StrongestExtra
from .kinds.topk import MAX_TOP_K as MAX_TOP_K
from .kinds.topk import TOPK_FIELDS as TOPK_FIELDS

DEFAULT_RUN_NAME = "feature_maps"
"""Sub-directory of ``log_dir`` the callback writes to by default."""

STEP_UNITS = ("epoch", "batch", "step")
"""What a step counts (``LayerInfo.step_unit``): epochs or batches (the Keras callback), or a loop's own steps."""

# Kinds of series (their modules in :mod:`.kinds`), each a prefix of the tag followed by the layer path.
KIND_ACTIVATIONS = kinds.activations.NAME
KIND_STATS = kinds.stats.NAME
KIND_WEIGHTS = kinds.weights.NAME
KIND_PROBES = kinds.probes.NAME
KIND_STRONGEST = kinds.strongest.NAME
KIND_TOPK = kinds.topk.NAME
KIND_CHANGE = kinds.change.NAME
KIND_POOL = kinds.pool.NAME
GRID_KINDS = kinds.of_type(kinds.GridKind)
"""Kinds stored as grid PNGs described by a :class:`LayerInfo`."""
TENSOR_KINDS = kinds.of_type(kinds.TensorKind)
"""Kinds stored as float32 tensors whose last axis is named by the content's ``fields``."""

PROBES_TAG = KIND_PROBES
"""Tag of the single series holding the probe inputs as images."""
POOL_TAG = KIND_POOL
"""Tag of the single series holding the pictures of the pool inputs (``strongest``' sources)."""

IMAGE_HEADER = 2
"""Entries before the PNGs in an image value ``[width, height, png_0, png_1, ...]`` (the layout of ``tf.summary.image``)."""


def image_value(pngs: Sequence[bytes], width: int, height: int) -> list[bytes]:
    """The image value ``[width, height, png...]`` of ``pngs`` (decimal width and height)."""
    return [str(width).encode(), str(height).encode(), *pngs]


def pngs_of(value: Sequence) -> Sequence:
    """The PNGs (or their blob keys) of an image value: what follows its :data:`IMAGE_HEADER`."""
    return value[IMAGE_HEADER:]


def images_tag(kind: str, layer_path: str) -> str:
    """Tag of the copy of a grid series for TensorBoard's stock Images dashboard."""
    return f"feature_maps/{kind}/{layer_path}"


def scalars_tag(name: str, layer_path: str) -> str:
    """Tag of a per-layer filter-health scalar (``dead_filters``, ``saturated_filters``) for the Scalars dashboard."""
    return f"feature_maps/{name}/{layer_path}"


NO_REDUCTION = "none"


def middle_slice(index: int, depth: int) -> str:
    """The ``reduction`` text of a 3-D map drawn as its slice ``index`` of ``depth``."""
    return f"middle slice {index} of depth {depth}"


def block_mean(factor_height: int, factor_width: int) -> str:
    """The ``reduction`` text of a map block-averaged by these factors."""
    return f"block mean {factor_height}x{factor_width}"


def joined(*reductions: str) -> str:
    """Several reductions applied in turn, as one ``reduction`` text (``"none"`` for none)."""
    return "; ".join(reduction for reduction in reductions if reduction != NO_REDUCTION) or NO_REDUCTION


FIELDS_BY_KIND = {name: kinds.tensor_kind(name).fields for name in TENSOR_KINDS}
"""Each tensor kind's fields, in this version's order (its :class:`kinds.TensorKind`'s ``fields``)."""


NORMALIZATIONS = ("per_filter", "per_layer")
"""How a tile's gray levels map to values (``LayerInfo.normalization``), see :func:`tile_ranges`."""


def tile_ranges(normalization: str, stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values that gray levels 0 and 255 stand for, per probe and filter: ``(lo, hi)``, float ``[P, F]`` each.

    ``stats`` are one step's ``[probes, filters, fields]``. ``"per_filter"``: each
    filter's own finite ``min`` and ``max`` for that probe (at full resolution,
    also for block-averaged tiles, whose block means lie inside that range).
    ``"per_layer"``: the finite extremes over every probe and filter of the step
    (used for 1x1 maps, where a per-filter range would be a single value).
    """
    low = stats[..., STATS_FIELDS.index("min")].astype(np.float64)
    high = stats[..., STATS_FIELDS.index("max")].astype(np.float64)
    if normalization == "per_layer":
        finite_low, finite_high = low[np.isfinite(low)], high[np.isfinite(high)]
        lo = finite_low.min() if finite_low.size else np.nan
        hi = finite_high.max() if finite_high.size else np.nan
        return np.full(low.shape, lo), np.full(high.shape, hi)
    if normalization != "per_filter":
        raise FormatError(f"unknown normalization {normalization!r}; this reader knows {', '.join(NORMALIZATIONS)}")
    return low, high


def levels_to_values(levels: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Gray levels (uint8, ``[..., h, w]``) back to values: ``lo + g/255·(hi − lo)``, exact to half a level.

    ``lo``/``hi`` broadcast against ``levels`` without its two spatial axes; a tile
    whose range is empty (``hi == lo``) is ``lo`` everywhere.
    """
    lo, hi = np.asarray(lo, np.float64)[..., None, None], np.asarray(hi, np.float64)[..., None, None]
    return (lo + levels.astype(np.float64) / 255.0 * np.where(hi > lo, hi - lo, 0.0)).astype(np.float32)


GUTTER_VALUE = 255
"""Gray level of the gutter between tiles."""

MAX_GRID_SIDE = 16384
"""Largest grid side (pixels) a reader accepts; the callback's caps stay far below it."""


@dataclass(frozen=True)
class GridLayout:
    """Where each filter's tile lies inside a grid PNG.

    Tile ``i`` (0-based, row-major) has its top-left pixel at
    ``(row * (tile_height + gutter), col * (tile_width + gutter))`` with
    ``row, col = divmod(i, cols)``.
    """

    tile_height: int
    tile_width: int
    rows: int
    cols: int
    gutter: int

    def tile_origin(self, index: int) -> tuple[int, int]:
        """``(top, left)`` pixel of tile ``index`` in the grid."""
        row, col = divmod(index, self.cols)
        return row * (self.tile_height + self.gutter), col * (self.tile_width + self.gutter)

    @property
    def height(self) -> int:
        return self.rows * (self.tile_height + self.gutter) - self.gutter

    @property
    def width(self) -> int:
        return self.cols * (self.tile_width + self.gutter) - self.gutter

    @classmethod
    def for_tiles(cls, count: int, tile_height: int, tile_width: int, gutter: int = 1) -> GridLayout:
        """A near-square (in pixels) layout for ``count`` tiles."""
        count = max(count, 1)
        best = None
        for cols in range(1, count + 1):
            rows = -(-count // cols)
            if (rows - 1) * cols >= count:
                continue  # an empty last row: a smaller layout exists
            height = rows * (tile_height + gutter)
            width = cols * (tile_width + gutter)
            score = (max(height, width) / min(height, width), rows * cols - count)
            if best is None or score < best[0]:
                best = (score, rows, cols)
        _, rows, cols = best
        return cls(tile_height, tile_width, rows, cols, gutter)


DRAWING_FIELDS = (
    "tile_height",
    "tile_width",
    "rows",
    "cols",
    "gutter",
    "filters_shown",
    "filters_total",
    "reduction",
    "tiles_per_filter",
    "extra",
    "reduced",
)
"""Grid content fields that describe one grid's drawing (:meth:`LayerInfo.drawing`); the others describe its layer."""


@dataclass(frozen=True)
class LayerInfo:
    """Constant description of one logged layer (the content of a grid series).

    TensorBoard keeps the metadata of a series' first event, so only what does
    not change over steps is stored here.
    """

    kind: str
    layer: str
    layer_class: str
    index: int
    output_shape: list
    layout: GridLayout
    filters_shown: int
    filters_total: int
    probe_labels: list
    step_unit: str
    reduction: str = NO_REDUCTION
    normalization: str = "per_filter"
    tiles_per_filter: int = 1
    """Tiles each filter has, consecutive: 1, or ``top_k`` for ``strongest`` (filter ``f``'s rank ``r`` is tile ``f·top_k + r``)."""
    version: int = FORMAT_VERSION
    extra: Optional[Any] = None
    """The kind's typed ``extra`` (:attr:`kinds.GridKind.extra`: a :class:`StrongestExtra` for ``strongest``); None for the others."""
    reduced: dict = field(default_factory=dict)
    """What the step budget lowered for this series, ``{argument: value drawn with}`` (``docs/format.md``, "Step budget")."""

    @property
    def axis_sizes(self) -> dict[str, int]:
        """The sizes of the axes a tensor kind's values can have (:data:`kinds.base.AXES`), for this layer."""
        inputs = getattr(self.extra, "pool_size", 0)
        return {"probes": len(self.probe_labels), "filters": self.filters_shown, "ranks": self.tiles_per_filter, "inputs": inputs}

    @property
    def map_shape(self) -> list:
        """The output's shape without the batch axis, channels last (``[H, W, C]``), in every producer's layout.

        ``output_shape`` is the producer's own (PyTorch's NCHW ``[null, C, H, W]``); its
        channel axis is the one of size ``filters_total``: the last, else axis 1. Where
        both are, the axes that the tiles show at full size (``reduction`` "none") decide,
        else the last.
        """
        dims = list(self.output_shape[1:])
        if len(dims) < 2 or dims[0] != self.filters_total:
            return dims
        first = [*dims[1:], dims[0]]
        if dims[-1] != self.filters_total:
            return first
        tiles = [self.layout.tile_height, self.layout.tile_width]
        return first if self.reduction == NO_REDUCTION and dims[1:] == tiles != dims[:-1] else dims

    def drawing(self) -> dict:
        """The content fields that say how this grid is drawn (:data:`DRAWING_FIELDS`, those it has: ``extra`` and ``reduced``
        only when not empty), by which a layer's grids of different kinds differ."""
        content = self.to_json()
        return {key: content[key] for key in DRAWING_FIELDS if content.get(key, {}) != {}}

    def to_json(self) -> dict:
        data = asdict(self)
        data["extra"] = {} if self.extra is None else self.extra.to_json()
        data["class"] = data.pop("layer_class")
        layout = data.pop("layout")
        data.update(layout)
        if not data["reduced"]:
            del data["reduced"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> LayerInfo:
        """Parses grid content; raises :class:`FormatError` for an impossible layout."""
        layout = GridLayout(**{k: int(data[k]) for k in ("tile_height", "tile_width", "rows", "cols", "gutter")})
        shown = int(data["filters_shown"])
        per_filter = int(data.get("tiles_per_filter", 1))
        if (
            per_filter < 1
            or min(layout.tile_height, layout.tile_width, layout.rows, layout.cols) < 1
            or not 0 <= layout.gutter <= 16
            or max(layout.height, layout.width) > MAX_GRID_SIDE
            or not (layout.rows - 1) * layout.cols < shown * per_filter <= layout.rows * layout.cols
            or shown > int(data["filters_total"])
            or not isinstance(data["probe_labels"], list)
        ):
            raise FormatError(f"feature_maps layer {data.get('layer')!r} has an impossible grid layout: {layout}, {shown} filters")
        return cls(
            kind=data["kind"],
            layer=data["layer"],
            layer_class=data["class"],
            index=int(data["index"]),
            output_shape=list(data["output_shape"]),
            layout=layout,
            filters_shown=shown,
            filters_total=int(data["filters_total"]),
            probe_labels=list(data["probe_labels"]),
            step_unit=data["step_unit"],
            reduction=data.get("reduction", "none"),
            normalization=data.get("normalization", "per_filter"),
            tiles_per_filter=per_filter,
            version=int(data["version"]),
            extra=_extra(data, per_filter),
            reduced=dict(data["reduced"]) if isinstance(data.get("reduced"), dict) else {},
        )


def _extra(data: dict, tiles_per_filter: int) -> Optional[Any]:
    """A grid content's ``extra``, parsed by its kind (:meth:`kinds.GridKind.parse_extra`); None for kinds without one."""
    kind = kinds.lookup(data.get("kind"))
    return kind.parse_extra(data.get("extra", {}), tiles_per_filter) if isinstance(kind, kinds.GridKind) else None


def grid_metadata(info: LayerInfo) -> summary_pb2.SummaryMetadata:
    """Metadata of a grid series (``activations/``, ``weights/``, ``strongest/``; blob sequence)."""
    return kinds.KINDS[info.kind].metadata(info)


def fields_metadata(kind: str, layer_path: str) -> summary_pb2.SummaryMetadata:
    """Metadata of a tensor series (``stats/``, ``topk/``, ``change/``; float32, last axis named by ``fields``)."""
    return kinds.tensor_kind(kind).metadata(layer_path)


@dataclass(frozen=True)
class Series:
    """What one series of the plugin is, from its tag and content (:func:`classify`)."""

    kind: str
    content: dict
    info: Optional[LayerInfo] = None
    """For grid kinds (activations, weights): the layer's description."""

    @property
    def layer(self) -> Optional[str]:
        return self.content.get("layer")


def classify(tag: str, content: bytes) -> Optional[Series]:
    """What the plugin's series ``tag`` holds, by its kind (:mod:`.kinds`); None for kinds this version does not know
    (they are skipped) and for a per-run kind under another tag.

    Raises :class:`FormatError` for content it cannot read or that does not match
    its tag (a grid or stats series named for another layer).
    """
    data = parse_content(content)
    kind = kinds.lookup(data["kind"])
    if kind is None:
        return None
    if not kind.per_layer:
        return Series(kind.name, data) if tag == kind.tag() else None
    layer = data.get("layer")
    if not isinstance(layer, str) or tag != kind.tag(layer):
        raise FormatError(f"feature_maps series {tag!r} describes layer {layer!r} of kind {kind.name!r}; its tag should be {kind.name}/<layer>")
    try:
        info = LayerInfo.from_json(data) if isinstance(kind, kinds.GridKind) else None
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, FormatError):
            raise
        raise FormatError(f"feature_maps series {tag!r} has unreadable metadata: {type(error).__name__}: {error}") from None
    return Series(kind.name, data, info)
