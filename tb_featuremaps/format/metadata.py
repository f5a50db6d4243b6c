"""The on-disk format shared by the callback (writer) and the plugin (reader).

Everything both sides must agree on lives here: the plugin name, the tag scheme,
the JSON carried in ``SummaryMetadata.plugin_data.content`` and the order of the
per-filter statistics. ``docs/format.md`` documents the same in prose.

This module imports neither TensorFlow nor Keras, so TensorBoard can load the
plugin on a machine that has neither.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np
from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "feature_maps"
"""Name of the plugin and of every series it owns (no dots: TensorBoard forbids them)."""

FORMAT_VERSION = 1
"""Version written into every metadata content; readers reject newer versions."""

DEFAULT_RUN_NAME = "feature_maps"
"""Sub-directory of ``log_dir`` the callback writes to by default."""

STEP_UNITS = ("epoch", "batch", "step")
"""What a step counts (``LayerInfo.step_unit``): epochs or batches (the Keras callback), or a loop's own steps."""

# Kinds of series, each a prefix of the tag followed by the layer path.
KIND_ACTIVATIONS = "activations"
KIND_STATS = "stats"
KIND_WEIGHTS = "weights"
KIND_PROBES = "probes"
KIND_STRONGEST = "strongest"
KIND_TOPK = "topk"
KIND_CHANGE = "change"
KIND_POOL = "pool"
GRID_KINDS = (KIND_ACTIVATIONS, KIND_WEIGHTS, KIND_STRONGEST)
"""Kinds stored as grid PNGs described by a :class:`LayerInfo`."""
TENSOR_KINDS = (KIND_STATS, KIND_TOPK, KIND_CHANGE)
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


STATS_FIELDS = ("min", "max", "mean", "std", "nonfinite")
"""Last axis of a stats tensor ``[probes, filters, len(STATS_FIELDS)]``.

``min``/``max``/``mean``/``std`` are taken over the finite values of one
filter's map for one probe (NaN when none is finite); ``nonfinite`` is the
fraction of NaN/Inf values.
"""

DEAD_THRESHOLD = 1e-6
"""A filter is dead at a step when ``max(|min|, |max|)`` is below this for every probe."""


TOPK_FIELDS = ("input", "value", "row", "col", "top", "left")
"""Last axis of a topk tensor ``[filters, top_k, len(TOPK_FIELDS)]``, one row per filter and rank.

``input``: the pool input's index (ranks sorted by ``value``, the filter's
maximum activation over its map for that input, descending; ties by index; a
pool input appears once per filter). ``row``/``col``: where that maximum lies in
the layer's output (full resolution; ``row`` is 0 for 1-D outputs). ``top``/
``left``: the input pixel at the patch's top-left corner, negative where the
receptive field reaches into the padding.
"""

MAX_TOP_K = 100
"""Most ranks per filter a reader takes of a ``topk`` tensor (and of a ``strongest`` sheet): the first ``MAX_TOP_K``,
the strongest; a tensor with more is cut there and said to be truncated. Producers keep ``top_k`` at most this."""

CHANGE_FIELDS = ("response", "kernel")
"""Last axis of a change tensor ``[filters, len(CHANGE_FIELDS)]``: each filter's relative change since the previous logged step.

``response``: ``|r_t - r_prev| / |r_prev|`` (Euclidean norms) of the filter's
response to the pool, ``r`` = its maximum activation for each pool input;
``kernel``: the same of the filter's kernel (all its input channels). NaN at a
run's first step, for a response without a pool, a kernel without weights.
"""

CHANGING_THRESHOLD = 0.05
"""A filter is *still changing* at a step when its change (``response``, else ``kernel``) exceeds this (5 % per logged interval)."""

FIELDS_BY_KIND = {KIND_STATS: STATS_FIELDS, KIND_TOPK: TOPK_FIELDS, KIND_CHANGE: CHANGE_FIELDS}


def align_fields(values: np.ndarray, fields: Sequence[str], known: Sequence[str]) -> np.ndarray:
    """A tensor stored with ``fields`` as its last axis, in ``known`` order.

    A field the log lacks is NaN, one this version does not know is dropped: so a
    field can be added without breaking older logs or older readers
    (docs/format.md, "Adding a field").
    """
    values = np.asarray(values, np.float32)
    if values.shape[-1:] != (len(fields),):
        raise FormatError(f"a tensor has {values.shape[-1] if values.ndim else 0} fields but its metadata names {len(fields)}: {list(fields)}")
    if tuple(fields) == tuple(known):
        return values
    aligned = np.full((*values.shape[:-1], len(known)), np.nan, np.float32)
    for position, name in enumerate(known):
        if name in fields:
            aligned[..., position] = values[..., list(fields).index(name)]
    return aligned


def align_stats(values: np.ndarray, fields: Sequence[str]) -> np.ndarray:
    """Stats stored with ``fields`` as their last axis, in :data:`STATS_FIELDS` order (:func:`align_fields`)."""
    return align_fields(values, fields, STATS_FIELDS)


def changing_filters(change: np.ndarray) -> float:
    """The fraction of filters still changing (:data:`CHANGING_THRESHOLD`) in a change tensor ``[filters, fields]``; NaN when unknown.

    A filter's ``response`` change is used where known (not NaN), else its ``kernel`` change; +inf (a dead
    filter come alive) counts as changing.
    """
    change = np.asarray(change, np.float64)
    response, kernel = change[:, CHANGE_FIELDS.index("response")], change[:, CHANGE_FIELDS.index("kernel")]
    measure = np.where(np.isnan(response), kernel, response)
    known = ~np.isnan(measure)
    return float((measure[known] > CHANGING_THRESHOLD).mean()) if known.any() else float("nan")


def dead_filters(stats: np.ndarray) -> np.ndarray:
    """Which filters are dead (see :data:`DEAD_THRESHOLD`): stats ``[..., probes, filters, fields]`` → bool ``[..., filters]``."""
    low, high = stats[..., STATS_FIELDS.index("min")], stats[..., STATS_FIELDS.index("max")]
    return (np.fmax(np.abs(low), np.abs(high)) < DEAD_THRESHOLD).all(axis=-2)


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


INPUT_RANGE = "input_range"
"""``normalization`` of ``strongest`` sheets: gray 0 and 255 stand for the pool inputs' ``extra.input_range`` ``[lo, hi]``."""


@dataclass(frozen=True)
class ReceptiveField:
    """Where a unit of a layer's output looks in the input, per spatial axis (rows, then columns).

    Unit ``i`` along an axis sees the input pixels ``start + i·jump`` up to
    ``start + i·jump + size`` (exclusive); ``start`` is negative where the field
    reaches into the padding.
    """

    size: tuple
    jump: tuple
    start: tuple

    def box(self, position: Sequence[int]) -> tuple[tuple, tuple]:
        """``(top-left corner, size)`` in input pixels of the field of the unit at ``position``."""
        corner = tuple(int(s + p * j) for s, p, j in zip(self.start, position, self.jump))
        return corner, tuple(int(size) for size in self.size)

    def to_json(self) -> dict:
        return {"size": list(self.size), "jump": list(self.jump), "start": list(self.start)}

    @classmethod
    def from_json(cls, data: Optional[dict]) -> Optional[ReceptiveField]:
        if data is None:
            return None
        return cls(tuple(int(v) for v in data["size"]), tuple(int(v) for v in data["jump"]), tuple(int(v) for v in data["start"]))


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


class FormatError(ValueError):
    """Raised for metadata content this version cannot read."""


def tag_for(kind: str, layer_path: str) -> str:
    """Returns the tag of ``kind``'s series for ``layer_path``."""
    return f"{kind}/{layer_path}"


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
    extra: dict = field(default_factory=dict)
    reduced: dict = field(default_factory=dict)
    """What the step budget lowered for this series, ``{argument: value drawn with}`` (``docs/format.md``, "Step budget")."""

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

    def to_json(self) -> dict:
        data = asdict(self)
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
            extra=dict(data.get("extra", {})),
            reduced=dict(data["reduced"]) if isinstance(data.get("reduced"), dict) else {},
        )


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def markdown_text(text: str) -> str:
    """``text`` made safe to embed in a summary description, which TensorBoard renders as Markdown.

    HTML is escaped as entities and Markdown's punctuation with backslashes, so a
    layer named ``<img src=x>`` or ``**bold**`` shows as those characters.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=True))


def _metadata(content: dict, data_class: int, description: str = "") -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(
        summary_description=description,
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME,
            content=json.dumps(content, sort_keys=True).encode("utf-8"),
        ),
        data_class=data_class,
    )


def grid_metadata(info: LayerInfo) -> summary_pb2.SummaryMetadata:
    """Metadata of an ``activations/`` or ``weights/`` grid series (blob sequence)."""
    return _metadata(info.to_json(), summary_pb2.DATA_CLASS_BLOB_SEQUENCE, f"{info.kind} of {markdown_text(info.layer)}")


def fields_metadata(kind: str, layer_path: str) -> summary_pb2.SummaryMetadata:
    """Metadata of a ``stats/``, ``topk/`` or ``change/`` series (float32 tensor, last axis named by ``fields``)."""
    content = {"version": FORMAT_VERSION, "kind": kind, "layer": layer_path, "fields": list(FIELDS_BY_KIND[kind])}
    what = {KIND_STATS: "statistics", KIND_TOPK: "strongest pool inputs", KIND_CHANGE: "change since the previous step"}[kind]
    return _metadata(content, summary_pb2.DATA_CLASS_TENSOR, f"per-filter {what} of {markdown_text(layer_path)}")


def pool_metadata(labels: list, input_shape: list, input_range: list) -> summary_pb2.SummaryMetadata:
    """Metadata of the ``pool`` series (blob sequence of the pool inputs' pictures, ``strongest``' sources)."""
    content = {
        "version": FORMAT_VERSION,
        "kind": KIND_POOL,
        "labels": list(labels),
        "input_shape": list(input_shape),
        "input_range": list(input_range),
    }
    return _metadata(content, summary_pb2.DATA_CLASS_BLOB_SEQUENCE, "pool inputs")


def probes_metadata(labels: list, input_shape: list) -> summary_pb2.SummaryMetadata:
    """Metadata of the ``probes`` series (blob sequence of the probe inputs)."""
    content = {"version": FORMAT_VERSION, "kind": KIND_PROBES, "labels": list(labels), "input_shape": list(input_shape)}
    return _metadata(content, summary_pb2.DATA_CLASS_BLOB_SEQUENCE, "probe inputs")


def parse_content(content: bytes) -> dict[str, Any]:
    """Decodes a series' plugin content; raises :class:`FormatError` if unreadable."""
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(f"feature_maps metadata is not JSON: {error}") from None
    if not isinstance(data, dict) or "kind" not in data or "version" not in data:
        raise FormatError("feature_maps metadata lacks 'kind' or 'version'")
    if not isinstance(data["version"], int) or isinstance(data["version"], bool):
        raise FormatError(f"feature_maps metadata has version {data['version']!r}, not an integer")
    if data["version"] > FORMAT_VERSION:
        raise FormatError(f"feature_maps format version {data['version']} is newer than this reader's ({FORMAT_VERSION}); upgrade tb-featuremaps")
    return data


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
    """What the plugin's series ``tag`` holds; None for kinds this version does not know (they are skipped).

    Raises :class:`FormatError` for content it cannot read or that does not match
    its tag (a grid or stats series named for another layer).
    """
    data = parse_content(content)
    kind = data["kind"]
    if kind in (KIND_PROBES, KIND_POOL):
        return Series(kind, data) if tag == {KIND_PROBES: PROBES_TAG, KIND_POOL: POOL_TAG}[kind] else None
    if kind not in (*GRID_KINDS, *TENSOR_KINDS):
        return None
    layer = data.get("layer")
    if not isinstance(layer, str) or tag != tag_for(kind, layer):
        raise FormatError(f"feature_maps series {tag!r} describes layer {layer!r} of kind {kind!r}; its tag should be {kind}/<layer>")
    try:
        info = LayerInfo.from_json(data) if kind in GRID_KINDS else None
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, FormatError):
            raise
        raise FormatError(f"feature_maps series {tag!r} has unreadable metadata: {type(error).__name__}: {error}") from None
    return Series(kind, data, info)
