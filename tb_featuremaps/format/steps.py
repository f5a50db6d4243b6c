"""Which of a series' logged steps to show when there are more than a view has room for."""

from __future__ import annotations

import numpy as np


def sample_indices(count: int, most: int) -> list[int]:
    """At most ``most`` of the positions ``0..count-1``, evenly spread, first and last included."""
    if count <= most:
        return list(range(count))
    return np.linspace(0, count - 1, max(most, 1)).round().astype(int).tolist()
