"""``weights/<layer>``: one grid PNG of a convolution's kernels, one tile per filter (averaged over its input channels)."""

from __future__ import annotations

from .base import GridKind

NAME = "weights"

KIND = GridKind(NAME, "one grid PNG of the layer's kernels, a tile per filter averaged over its input channels, each on its own range")
