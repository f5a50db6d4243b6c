"""``strongest/<layer>``: one sheet PNG of each drawn filter's top-k pool patches (with a pool), filter f's rank r tile f·k + r."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from ..content import FormatError
from .base import GridKind

NAME = "strongest"

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


RECEPTIVE_FIELD = "receptive field"
"""``StrongestExtra.patch`` of patches cut out under each unit's receptive field."""

WHOLE_INPUT = "whole input"
"""``StrongestExtra.patch`` of patches that are the whole pool input (the field could not be computed)."""


@dataclass(frozen=True)
class StrongestExtra:
    """The ``extra`` of a ``strongest`` sheet's content (docs/format.md, "What each filter looks for"), parsed once.

    Written as the same JSON object as ever; a key an older log lacks takes the default below.
    """

    top_k: int
    """``k``: the strongest pool inputs kept per filter."""
    pool_size: int = 0
    """``N``: the pool's size."""
    receptive_field: Optional[ReceptiveField] = None
    """Where the layer's units look in the input; None where it cannot be computed (then the patches are whole inputs)."""
    patch: str = WHOLE_INPUT
    """:data:`RECEPTIVE_FIELD` or :data:`WHOLE_INPUT`."""
    patch_reason: str = ""
    """Why the patches are whole inputs (a layer on the path the producer cannot follow); empty otherwise."""
    patch_size: Optional[tuple[int, ...]] = None
    """Input pixels of each patch ``(h, w)``: the field's size, or the input's along an axis where the field is larger."""
    input_range: tuple[float, float] = (0.0, 1.0)
    """``(lo, hi)``: the values gray levels 0 and 255 of the patches (and the pool pictures) stand for."""

    def to_json(self) -> dict[str, Any]:
        return {
            "top_k": self.top_k,
            "pool_size": self.pool_size,
            "receptive_field": None if self.receptive_field is None else self.receptive_field.to_json(),
            "patch": self.patch,
            "patch_reason": self.patch_reason,
            "patch_size": None if self.patch_size is None else list(self.patch_size),
            "input_range": list(self.input_range),
        }

    @classmethod
    def from_json(cls, data: Any, tiles_per_filter: int = 1) -> StrongestExtra:
        """Parses a sheet's ``extra``; ``tiles_per_filter`` stands for a missing ``top_k``. Raises :class:`FormatError` if unreadable."""
        if not isinstance(data, dict):
            raise FormatError(f"a strongest sheet's extra is {type(data).__name__}, not an object")
        try:
            size, low_high = data.get("patch_size"), data.get("input_range", (0.0, 1.0))
            low, high = (float(value) for value in low_high)
            return cls(
                top_k=int(data.get("top_k", tiles_per_filter)),
                pool_size=int(data.get("pool_size", 0)),
                receptive_field=ReceptiveField.from_json(data.get("receptive_field")),
                patch=str(data.get("patch", WHOLE_INPUT if data.get("receptive_field") is None else RECEPTIVE_FIELD)),
                patch_reason=str(data.get("patch_reason", "")),
                patch_size=None if size is None else tuple(int(side) for side in size),
                input_range=(low, high),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise FormatError(f"a strongest sheet's extra cannot be read: {type(error).__name__}: {error}") from None


KIND = GridKind(
    NAME,
    "one sheet PNG of each drawn filter's top-k pool patches under its strongest responses, gray levels of the pool's input range",
    ranked=True,
    extra=StrongestExtra,
)
