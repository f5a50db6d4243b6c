"""Decoding the PNGs a series holds (grids, sheets, probe and pool pictures) back to gray levels."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def decode_png(data: bytes) -> np.ndarray:
    """Decodes PNG bytes to uint8 ``[H, W]`` (gray) or ``[H, W, C]``."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)
