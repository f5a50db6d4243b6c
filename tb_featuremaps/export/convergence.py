"""The convergence figure: which layers have settled (linear CKA of each step to the latest), and one layer's step × step map.

Computed from the ``responses/`` series by :mod:`..format.convergence` (docs/format.md,
"Responses to the pool"), drawn with matplotlib like :mod:`.figures`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
from matplotlib.figure import Figure

from ..format import convergence
from ..format.reader import RunLog, StrongestLog
from .figures import LINE_STYLES, MARKERS, _plural


@dataclass(frozen=True)
class LayerConvergence:
    """One layer's similarity to its latest step and where it settled."""

    layer: str
    steps: np.ndarray
    similarity: np.ndarray
    """float64 ``[steps]``: linear CKA of each step's responses to the latest step's."""
    settled: Optional[int]
    """The first step from which ``similarity`` stays ≥ the threshold; None: never."""

    @classmethod
    def of(cls, best: StrongestLog, threshold: float) -> LayerConvergence:
        similarity = best.similarity_to()
        return cls(best.info.layer, best.steps, similarity, convergence.settled_step(similarity, best.steps, threshold))


def settled_text(unit: str, settled: Optional[int]) -> str:
    """``settled at epoch 5``, or ``not settled`` when it never did."""
    return f"settled at {unit} {settled}" if settled is not None else "not settled"


def convergence_figure(run: RunLog, layers: Sequence[StrongestLog], mapped: StrongestLog, threshold: float = convergence.SETTLED_THRESHOLD) -> Figure:
    """Left: every layer's CKA to its latest step over training, one line each, labelled where it settled; right:
    ``mapped``'s CKA between every two steps (darker: less alike), titled with where it settled."""
    unit = mapped.info.step_unit
    figure = Figure(figsize=(12.5, 5.0), layout="constrained")
    lines, heat = figure.subplots(1, 2, width_ratios=(1.35, 1))
    for position, best in enumerate(layers):
        found = LayerConvergence.of(best, threshold)
        lines.plot(
            found.steps,
            found.similarity,
            linestyle=LINE_STYLES[position % len(LINE_STYLES)],
            marker=MARKERS[position % len(MARKERS)],
            markersize=4,
            markerfacecolor="none",
            label=f"{found.layer} ({settled_text(unit, found.settled)})",
        )
    lines.axhline(threshold, color="0.5", linewidth=0.8, linestyle=":")
    lines.set_xlabel(_plural(unit))
    lines.set_ylabel("linear CKA to the latest step")
    lines.set_ylim(-0.03, 1.03)
    lines.grid(alpha=0.3)
    lines.legend(fontsize=8, loc="lower right")
    matrix = mapped.similarity()
    steps = mapped.steps
    image = heat.imshow(matrix, vmin=0, vmax=1, cmap="viridis", origin="lower", interpolation="nearest")
    ticks = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), 8)).round().astype(int))
    heat.set_xticks(ticks, [str(steps[tick]) for tick in ticks])
    heat.set_yticks(ticks, [str(steps[tick]) for tick in ticks])
    heat.set_xlabel(unit)
    heat.set_ylabel(unit)
    settled = convergence.settled_step(matrix[:, -1], steps, threshold)
    heat.set_title(f"{mapped.info.layer}: {settled_text(unit, settled)}", fontsize=10)
    figure.colorbar(image, ax=heat, label="linear CKA", shrink=0.85)
    figure.suptitle(f"Which layers have settled — run {run.name}", fontsize=12, fontweight="bold")
    subtitle = (
        f"linear CKA (Kornblith et al. 2019) of each layer's responses to the {mapped.pool_size} pool inputs, to its latest step; "
        f"settled: from where it stays ≥ {threshold:g}"
    )
    lines.set_title("\n".join(textwrap.wrap(subtitle, 80)), fontsize=9)
    return figure
