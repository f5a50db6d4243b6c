"""``responses/<layer>``: each drawn filter's maximum response to each pool input, ``[N, F]`` (written with ``strongest``).

What the layer-convergence and class-selectivity views are computed from where they
are shown (:mod:`..convergence`): linear CKA between two steps, each filter's class
means. Stored as float16 (2 bytes a value: 500 inputs × 128 filters is 125 KiB a
layer), or float32 at a step float16 cannot hold to its precision (:func:`stored`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from tensorboard.compat.proto import summary_pb2, tensor_pb2

from ..content import FORMAT_VERSION, FormatError, markdown_text, summary_metadata
from ..convergence import SETTLED_THRESHOLD
from .base import TensorKind, tensor_proto

NAME = "responses"

HALF_LARGEST = 65504.0
"""float16's largest finite value: a step with a finite response beyond it is stored as float32."""

HALF_SMALLEST = 2.0**-10
"""A step whose largest finite magnitude is below this (and not 0) is stored as float32: float16's absolute resolution
(2⁻²⁴ near 0) stays under 2⁻¹⁴ of the step's largest response only above it."""


def stored(values: np.ndarray) -> np.ndarray:
    """One step's responses ``[N, F]`` as stored: float16, or float32 where float16 would lose them.

    float16 keeps every value to 2⁻¹¹ of itself (about 3 decimal digits; linear CKA
    computed from it differs from float32's by 10⁻⁴ or less, docs/format.md) and NaN as
    NaN. A step whose largest finite magnitude exceeds :data:`HALF_LARGEST` (it would
    become ±Inf) or is under :data:`HALF_SMALLEST` (it would lose its digits to
    float16's subnormals) is stored as float32, whole.
    """
    values = np.asarray(values, np.float32)
    finite = np.abs(values[np.isfinite(values)])
    largest = float(finite.max()) if finite.size else 0.0
    return values.astype(np.float16) if largest == 0.0 or HALF_SMALLEST <= largest <= HALF_LARGEST else values


class ResponsesKind(TensorKind):
    """The responses kind: a ``[inputs, filters]`` tensor, float16 or float32, with no fields axis."""

    @property
    def rank(self) -> int:
        """The values' rank: :attr:`axes` alone (no fields)."""
        return len(self.axes)

    def shape(self, sizes: Mapping[str, int]) -> tuple[int, ...]:
        """``(pool inputs, drawn filters)`` of a layer whose axes have ``sizes`` (``metadata.LayerInfo.axis_sizes``)."""
        return tuple(sizes[axis] for axis in self.axes)

    def metadata(self, layer: str) -> summary_pb2.SummaryMetadata:
        """The series' metadata: ``{"version", "kind", "layer", "axes": ["inputs", "filters"]}``."""
        content = {"version": FORMAT_VERSION, "kind": self.name, "layer": layer, "axes": list(self.axes)}
        return summary_metadata(content, summary_pb2.DATA_CLASS_TENSOR, f"each filter's response to each pool input, {markdown_text(layer)}")

    def to_tensor(self, value: np.ndarray) -> tensor_pb2.TensorProto:
        """One step's ``TensorProto``: :func:`stored`'s array (float16 or float32)."""
        return tensor_proto(stored(value))

    def aligned(self, value: np.ndarray, fields: Sequence[str]) -> np.ndarray:
        """A stored value as float32 ``[N, F]``; :class:`FormatError` for one of another rank or not floating point."""
        value = np.asarray(value)
        if value.ndim != self.rank or value.dtype.kind != "f":
            raise FormatError(f"a {self.name} value has shape {value.shape} and dtype {value.dtype}; it should be a float tensor [inputs, filters]")
        return value.astype(np.float32)


KIND = ResponsesKind(
    NAME,
    "each drawn filter's maximum over its map for each pool input, float16 (float32 where float16 cannot hold a step) [inputs, filters]",
    {"settled_threshold": SETTLED_THRESHOLD},
    axes=("inputs", "filters"),
    grid="strongest",
    what="responses to the pool",
)
