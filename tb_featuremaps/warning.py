"""The package's one way to warn: at the user's call, not at a line inside this package or the framework that called it."""

from __future__ import annotations

import sys
import warnings

CALLERS = ("tb_featuremaps", "keras", "tensorflow", "torch", "lightning", "pytorch_lightning", "jax", "threading")
"""Top-level modules whose frames a warning skips: this package, and the frameworks that run its callbacks and hooks."""


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message)`` attributed to the first frame outside :data:`CALLERS` (e.g. the user's ``fit`` or ``log`` line)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and str(frame.f_globals.get("__name__", "")).split(".")[0] in CALLERS:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
