"""Validation of the producers' constructor arguments: a clear ``ValueError`` naming the argument and the fix."""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def path(owner: str, name: str, value: Any) -> str:
    """A non-empty directory path (``str`` or ``os.PathLike``) without NUL characters."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ValueError(f"{owner}: {name} must be a directory path, got {value!r}.")
    text = os.fspath(value)
    if not isinstance(text, str) or "\0" in text:
        raise ValueError(f"{owner}: {name} must be a text path without NUL characters, got {value!r}.")
    return text


def run_name(owner: str, value: Any) -> str:
    """A plain directory name: no separator, no NUL, not ``.`` or ``..``."""
    if not isinstance(value, str) or not value or "\0" in value or os.sep in value or "/" in value or value in (".", ".."):
        raise ValueError(f"{owner}: run_name must be a plain directory name (no '/', no NUL), got {value!r}.")
    return value


def positive_integer(owner: str, name: str, value: Any) -> int:
    """A positive integer (NumPy integers too, booleans not)."""
    if not _is_integer(value) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}.")
    return int(value)


def step(owner: str, value: Any) -> int:
    """A non-negative integer step (NumPy integers and 0-d integer arrays or tensors too)."""
    if not _is_integer(value) and np.ndim(value) == 0 and np.issubdtype(np.asarray(value).dtype, np.integer):
        value = int(np.asarray(value))
    if not _is_integer(value) or value < 0:
        raise ValueError(f"{owner}: step must be a non-negative integer, got {value!r}.")
    return int(value)


def boolean(owner: str, name: str, value: Any) -> bool:
    """``True`` or ``False`` (NumPy booleans too); a string such as ``"false"`` is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}.")
    return bool(value)


def choice(owner: str, name: str, value: Any, allowed: Sequence[str]) -> str:
    """One of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}.")
    return value
