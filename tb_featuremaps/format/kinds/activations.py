"""``activations/<layer>``: one grid PNG per probe of a layer's feature maps, one tile per drawn filter."""

from __future__ import annotations

from .base import GridKind

NAME = "activations"

KIND = GridKind(NAME, "one grid PNG per probe of the layer's feature maps, a tile per drawn filter, gray levels by the stats' range")
