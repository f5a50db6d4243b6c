"""What a series kind is: its name, where its series live, what its values hold (the kind modules fill it in).

Three shapes of kind exist; each kind module makes one instance of one of them:

- :class:`PicturesKind`: one series per run, tagged by the kind's name (``probes``, ``pool``), pictures;
- :class:`GridKind`: one series per layer, tagged ``<kind>/<layer>``, a grid PNG whose content is a
  ``LayerInfo`` (``metadata.LayerInfo``), tiles laid out by ``metadata.GridLayout``;
- :class:`TensorKind`: one series per layer, a float32 tensor of a fixed rank whose last axis is named by
  ``fields``, written in one event with a grid kind's series (``grid``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

from ..content import FORMAT_VERSION, FormatError, align_fields, markdown_text, summary_metadata, tag_for

AXES = ("probes", "filters", "ranks", "inputs")
"""What a tensor kind's axes can be: the layer's probes, its drawn filters (``filters_shown``), a filter's ranks (``tiles_per_filter``
of its ``strongest`` sheet), the pool's inputs (``pool_size`` of its ``strongest`` sheet)."""


@dataclass(frozen=True)
class Kind:
    """A series kind: its ``name`` (the tag's first component) and ``description`` (one sentence, for docs and the panel)."""

    name: str
    description: str
    constants: Mapping[str, Any] = field(default_factory=dict)
    """Named numbers of the kind's rules the panel applies too (thresholds, caps), by their JSON names."""

    per_layer = True
    storage = "blobs"

    def tag(self, layer: Optional[str] = None) -> str:
        """The tag of this kind's series for ``layer`` (``<kind>/<layer>``; the name alone for a per-run kind)."""
        return tag_for(self.name, layer) if self.per_layer else self.name

    def to_json(self) -> dict[str, Any]:
        """What the panel is told of the kind (the ``kinds`` of the ``runs`` listing, docs/http-api.md)."""
        return {"name": self.name, "description": self.description, "per_layer": self.per_layer, "storage": self.storage, **self.constants}


@dataclass(frozen=True)
class PicturesKind(Kind):
    """One series per run (tag: the kind's name): ``[width, height, png_0, …]``, one picture per input."""

    per_layer = False


@dataclass(frozen=True)
class GridKind(Kind):
    """One series per layer: ``[width, height, png…]`` grids, one tile per filter and rank (``tiles_per_filter``).

    Filter ``f``'s rank ``r`` is tile ``f·tiles_per_filter + r`` (1 tile per filter unless ``ranked``), placed
    row-major by ``metadata.GridLayout``.
    """

    ranked: bool = False
    """Whether each filter has several tiles (``tiles_per_filter`` > 1: its strongest inputs, strongest first)."""
    extra: Optional[type] = None
    """The frozen dataclass of the content's ``extra`` (``from_json(data, tiles_per_filter)``, ``to_json()``); None: no extra."""

    def metadata(self, info: Any) -> summary_pb2.SummaryMetadata:
        """The series' metadata from its ``metadata.LayerInfo``: the info's JSON, a blob sequence."""
        return summary_metadata(info.to_json(), summary_pb2.DATA_CLASS_BLOB_SEQUENCE, f"{self.name} of {markdown_text(info.layer)}")

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "tile": "filter * tiles_per_filter + rank", "ranked": self.ranked}

    def parse_extra(self, data: Any, tiles_per_filter: int) -> Any:
        """The content's ``extra`` as :attr:`extra` (None for a kind without one)."""
        return None if self.extra is None else self.extra.from_json(data, tiles_per_filter)


@dataclass(frozen=True)
class TensorKind(Kind):
    """One float32 tensor series per layer: axes named by ``axes``, then a last axis named by ``fields`` (in this version's order)."""

    fields: tuple[str, ...] = ()
    axes: tuple[str, ...] = ("filters",)
    """The axes before the fields, each one of :data:`AXES`: stats ``("probes", "filters")``, change ``("filters",)``."""
    grid: str = ""
    """The grid kind whose event each value is written in (a step logged twice keeps the value of the grid's event)."""
    what: str = ""
    """What the values are, for the series' summary description (``per-filter <what> of <layer>``)."""
    max_ranks: Optional[int] = None
    """Most entries along axis 1 a reader takes (the rest, the weakest, are cut before anything is copied)."""

    storage = "tensor"

    @property
    def rank(self) -> int:
        """The values' rank: :attr:`axes` and the fields."""
        return len(self.axes) + 1

    def shape(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """The shape of one step's value of a layer whose axes have ``sizes`` (``metadata.LayerInfo.axis_sizes``), after :meth:`cut`."""
        cut = {"ranks": self.max_ranks} if self.max_ranks is not None else {}
        return (*(min(sizes[axis], cut.get(axis, sizes[axis])) for axis in self.axes), len(self.fields))

    def field(self, name: str) -> int:
        """Position of field ``name`` on the last axis."""
        return self.fields.index(name)

    def metadata(self, layer: str) -> summary_pb2.SummaryMetadata:
        """The series' metadata: ``{"version", "kind", "layer", "fields"}``."""
        content = {"version": FORMAT_VERSION, "kind": self.name, "layer": layer, "fields": list(self.fields)}
        return summary_metadata(content, summary_pb2.DATA_CLASS_TENSOR, f"per-filter {self.what} of {markdown_text(layer)}")

    def to_tensor(self, value: np.ndarray) -> tensor_pb2.TensorProto:
        """One step's value as its ``TensorProto``: float32 (:func:`tensor_proto`)."""
        return tensor_proto(np.asarray(value, np.float32))

    def cut(self, value: np.ndarray) -> np.ndarray:
        """``value`` with at most :attr:`max_ranks` entries along axis 1 (a crafted log cannot make a reader copy more)."""
        return value if self.max_ranks is None or value.ndim < 2 else value[:, : self.max_ranks]

    def truncated(self, value: np.ndarray) -> bool:
        """Whether :meth:`cut` leaves part of ``value`` out."""
        return self.max_ranks is not None and value.ndim == self.rank and value.shape[1] > self.max_ranks

    def aligned(self, value: np.ndarray, fields: Sequence[str]) -> np.ndarray:
        """A stored value cut (:meth:`cut`) and in this version's field order (``content.align_fields``).

        Raises :class:`FormatError` for a value of another rank, not floating point, or with fields its metadata does not name.
        """
        value = np.asarray(value)
        if value.ndim != self.rank or value.dtype.kind != "f":
            raise FormatError(f"a {self.name} value has shape {value.shape} and dtype {value.dtype}; it should be a float tensor of rank {self.rank}")
        return align_fields(self.cut(value), fields, self.fields)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "fields": list(self.fields), "axes": list(self.axes), "rank": self.rank, "grid": self.grid}


_DTYPES = {np.dtype(np.float16): (types_pb2.DT_HALF, "<f2"), np.dtype(np.float32): (types_pb2.DT_FLOAT, "<f4")}


def tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """A float16 or float32 ``array`` as a ``TensorProto`` holding its little-endian bytes (``tensor_content``)."""
    dtype, layout = _DTYPES[np.asarray(array).dtype]
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in np.shape(array)])
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, tensor_content=np.asarray(array).astype(layout).tobytes())
