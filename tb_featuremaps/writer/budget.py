"""``max_step_bytes``: the order in which a run's drawing is reduced to fit the budget, decided once from its first step.

The writer draws its first step with the user's arguments; when that step is over
the budget it draws it again with the next rung of :data:`LADDER` taken, and so
on until it fits (or the ladder ends). What the last attempt used is the run's
:class:`Drawing` from then on: every later step is drawn the same way, so a series
never changes its layout between steps. The rungs reduce first what users look
at least: the Images-dashboard copies (the Feature Maps panel never reads them),
then the strongest inputs' patches and ranks, then the feature-map tiles.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Union

from .summary import byte_text

BUDGET_SHARE = 0.75
"""The first step is reduced until it takes at most this share of ``max_step_bytes``: later steps draw the same
pixels, but their PNGs compress differently as the filters train."""


@dataclass(frozen=True)
class Drawing:
    """What a run draws with: the user's arguments, lowered by the rungs the budget took."""

    write_images: Union[bool, str]
    max_tile_size: int
    max_patch_size: int
    top_k: int


@dataclass(frozen=True)
class Rung:
    """One step of the order of degradation: a :class:`Drawing` field lowered to ``value``."""

    field: str
    value: Union[bool, int]
    what: str
    """What it reduces, for the warning, e.g. ``"feature-map tiles at most 32 px a side (max_tile_size)"``."""

    def lowers(self, drawing: Drawing, largest: dict) -> bool:
        """Whether taking this rung changes what ``drawing`` draws, given the first step's ``largest`` tile and patch sides."""
        current = getattr(drawing, self.field)
        if self.field == "write_images":
            return current is not False
        return self.value < min(current, largest.get(self.field, 0))


LADDER: tuple[Rung, ...] = (
    Rung("write_images", False, "the copies for TensorBoard's Images dashboard left out (write_images=False)"),
    Rung("max_patch_size", 24, "strongest-input patches block-averaged to at most 24 px a side (from 48)"),
    Rung("max_patch_size", 12, "strongest-input patches block-averaged to at most 12 px a side"),
    Rung("top_k", 4, "the 4 strongest pool inputs kept per filter (top_k=4)"),
    Rung("max_tile_size", 32, "feature-map tiles at most 32 px a side (max_tile_size=32)"),
    Rung("max_tile_size", 16, "feature-map tiles at most 16 px a side (max_tile_size=16)"),
    Rung("max_tile_size", 8, "feature-map tiles at most 8 px a side (max_tile_size=8)"),
)
"""The order of degradation (``docs/format.md``, "Step budget"): what users look at least goes first."""


@dataclass
class Attempt:
    """What drawing a step took: its bytes (layers only) and the largest tile and patch sides it drew from."""

    total: int
    layers: dict
    """Layer path → its bytes."""
    largest: dict
    """``{"max_tile_size": the largest map side, "max_patch_size": the largest patch side, "top_k": the most ranks}``, before
    any block mean: what each rung could lower."""


@dataclass
class Decision:
    """A run's drawing and how it came to be."""

    drawing: Drawing
    taken: list
    """``(rung, bytes of the first step once it was taken)`` in order."""
    first: Attempt
    """The first step drawn with the user's arguments."""


def choose(drawing: Drawing, max_bytes: int, attempt: Callable[[Drawing], Attempt]) -> Decision:
    """Draws the first step (``attempt``) with ``drawing``, then with each useful rung of :data:`LADDER` taken in turn,
    until it takes at most :data:`BUDGET_SHARE` of ``max_bytes``; the last attempt is left pending, to be written."""
    measured = attempt(drawing)
    decision = Decision(drawing, [], measured)
    for rung in LADDER:
        if measured.total <= BUDGET_SHARE * max_bytes:
            break
        if not rung.lowers(decision.drawing, measured.largest):
            continue
        decision.drawing = replace(decision.drawing, **{rung.field: rung.value})
        measured = attempt(decision.drawing)
        decision.taken.append((rung, measured.total))
    return decision


def reduced(user: Drawing, drawing: Drawing, field: str, side: int) -> dict:
    """A series' ``reduced`` content: ``{field: value}`` when the budget lowered ``field`` below a side it draws."""
    value = getattr(drawing, field)
    return {field: value} if value < getattr(user, field) and side > value else {}


def warning(owner: str, max_bytes: int, step: Optional[int], decision: Decision) -> Optional[str]:
    """The one warning of a decision that reduced anything: what, by how much, and the arguments that restore it."""
    if not decision.taken:
        return None
    final = decision.taken[-1][1]
    steps, before = [], decision.first.total
    for rung, after in decision.taken:
        steps.append(f"{rung.what} ({byte_text(before)} → {byte_text(after)})")
        before = after
    biggest = sorted(decision.first.layers.items(), key=lambda item: -item[1])[:3]
    named = ", ".join(f"{layer!r} {byte_text(size)}" for layer, size in biggest)
    over = final > max_bytes
    ending = (
        f" Even so the step takes {byte_text(final)}, over the budget: log fewer layers (layers=[...]), pass max_filters= or top_k= "
        "smaller, or raise max_step_bytes."
        if over
        else ""
    )
    return (
        f"{owner}: step {step} would log {byte_text(decision.first.total)}, over max_step_bytes={max_bytes} ({byte_text(max_bytes)}; "
        f"the biggest layers: {named}); every step of this run is drawn within it, reduced in this order: {'; '.join(steps)}.{ending} "
        f"To log everything, pass max_step_bytes={_restoring(decision.first.total)} (None: no budget); the panel marks the reduced "
        "layers. This warning is not repeated."
    )


def _restoring(size: int) -> int:
    """A budget that takes ``size`` with :data:`BUDGET_SHARE`, rounded up to a MiB."""
    mib = 2**20
    return -(-int(size / BUDGET_SHARE) // mib) * mib
