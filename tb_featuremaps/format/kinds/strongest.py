"""``strongest/<layer>``: one sheet PNG of each drawn filter's top-k pool patches (with a pool), filter f's rank r tile f·k + r."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from .base import GridKind

NAME = "strongest"

INPUT_RANGE = "input_range"
"""``normalization`` of ``strongest`` sheets: gray 0 and 255 stand for the pool inputs' ``extra.input_range`` ``[lo, hi]``."""

KIND = GridKind(
    NAME,
    "one sheet PNG of each drawn filter's top-k pool patches under its strongest responses, gray levels of the pool's input range",
    ranked=True,
)


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
