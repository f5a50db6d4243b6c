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
GRID_KINDS = (KIND_ACTIVATIONS, KIND_WEIGHTS)

PROBES_TAG = KIND_PROBES
"""Tag of the single series holding the probe inputs as images."""

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


def align_stats(values: np.ndarray, fields: Sequence[str]) -> np.ndarray:
    """Stats stored with ``fields`` as their last axis, in :data:`STATS_FIELDS` order.

    A field the log lacks is NaN, one this version does not know is dropped: so a
    field can be added without breaking older logs or older readers
    (docs/format.md, "Adding a field").
    """
    values = np.asarray(values, np.float32)
    if values.shape[-1:] != (len(fields),):
        raise FormatError(f"stats have {values.shape[-1] if values.ndim else 0} fields but their metadata names {len(fields)}: {list(fields)}")
    if tuple(fields) == STATS_FIELDS:
        return values
    aligned = np.full((*values.shape[:-1], len(STATS_FIELDS)), np.nan, np.float32)
    for position, name in enumerate(STATS_FIELDS):
        if name in fields:
            aligned[..., position] = values[..., list(fields).index(name)]
    return aligned


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
    version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        data = asdict(self)
        data["class"] = data.pop("layer_class")
        layout = data.pop("layout")
        data.update(layout)
        return data

    @classmethod
    def from_json(cls, data: dict) -> LayerInfo:
        """Parses grid content; raises :class:`FormatError` for an impossible layout."""
        layout = GridLayout(**{k: int(data[k]) for k in ("tile_height", "tile_width", "rows", "cols", "gutter")})
        shown = int(data["filters_shown"])
        if (
            min(layout.tile_height, layout.tile_width, layout.rows, layout.cols) < 1
            or not 0 <= layout.gutter <= 16
            or max(layout.height, layout.width) > MAX_GRID_SIDE
            or not (layout.rows - 1) * layout.cols < shown <= layout.rows * layout.cols
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
            version=int(data["version"]),
            extra=dict(data.get("extra", {})),
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


def stats_metadata(layer_path: str) -> summary_pb2.SummaryMetadata:
    """Metadata of a ``stats/`` series (float32 tensor ``[probes, filters, fields]``)."""
    content = {"version": FORMAT_VERSION, "kind": KIND_STATS, "layer": layer_path, "fields": list(STATS_FIELDS)}
    return _metadata(content, summary_pb2.DATA_CLASS_TENSOR, f"per-filter statistics of {markdown_text(layer_path)}")


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
    if kind == KIND_PROBES:
        return Series(kind, data) if tag == PROBES_TAG else None
    if kind not in (*GRID_KINDS, KIND_STATS):
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
