"""Validation of the routes' query parameters: bad input is a 400, never a 500."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Optional

from tensorboard import errors

from ..format import metadata

_INTEGER = re.compile(r"[0-9]{1,15}")
"""Non-negative decimal integers, ASCII digits only (``int()`` would also take ``+1``, `` 1``, ``1_0`` and other scripts' digits)."""

_SHOWN = 80
"""Longest excerpt of a bad value quoted back in an error message."""


def quote(value: str) -> str:
    """``value`` as a Python literal, cut to its first 80 characters, for an error message."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


def name(args: Mapping[str, str], key: str) -> str:
    """A required, non-empty name parameter (``run``, ``layer``)."""
    value = args.get(key)
    if not value:
        raise errors.InvalidArgumentError(f"missing parameter {key!r}")
    return value


def integer(args: Mapping[str, str], key: str, default: Optional[int] = None) -> int:
    """A non-negative decimal integer parameter; required unless ``default`` is given."""
    value = args.get(key)
    if value is None:
        if default is None:
            raise errors.InvalidArgumentError(f"missing parameter {key!r}")
        return default
    if not _INTEGER.fullmatch(value):
        raise errors.InvalidArgumentError(f"parameter {key!r} must be a non-negative integer of at most 15 digits, got {quote(value)}")
    return int(value)


_FRACTION = re.compile(r"(0|1)?(\.[0-9]{1,6})?")
"""A decimal fraction as ``0.95``, ``.95`` or ``1``: ASCII digits, at most 6 after the point."""


def fraction(args: Mapping[str, str], key: str, default: float) -> float:
    """A decimal number above 0 and at most 1 (``threshold``), ``default`` when not given."""
    value = args.get(key)
    if value is None:
        return default
    if not value or not _FRACTION.fullmatch(value) or not 0 < float(value) <= 1:
        raise errors.InvalidArgumentError(f"parameter {key!r} must be a decimal number above 0 and at most 1 (e.g. 0.95), got {quote(value)}")
    return float(value)


def kind(args: Mapping[str, str]) -> str:
    """The grid kind: ``activations`` (default) or ``weights``."""
    value = args.get("kind", metadata.KIND_ACTIVATIONS)
    if value not in metadata.GRID_KINDS:
        raise errors.InvalidArgumentError(f"parameter 'kind' must be one of {', '.join(metadata.GRID_KINDS)}, got {quote(value)}")
    return value


def not_found(what: str, value: object) -> errors.NotFoundError:
    """A 404 error naming the unknown ``what``."""
    return errors.NotFoundError(f"unknown {what} {quote(str(value))}")


MAX_BATCH = 64
"""Most steps one ``grids`` request may ask for."""


def steps(args: Mapping[str, str]) -> list[int]:
    """``steps``: 1 to :data:`MAX_BATCH` comma-separated non-negative integers, in the order given."""
    value = args.get("steps")
    if not value:
        raise errors.InvalidArgumentError("missing parameter 'steps' (comma-separated steps, e.g. steps=0,1,2)")
    parts = value.split(",")
    if len(parts) > MAX_BATCH:
        raise errors.InvalidArgumentError(f"parameter 'steps' may list at most {MAX_BATCH} steps, got {len(parts)}")
    bad = next((part for part in parts if not _INTEGER.fullmatch(part)), None)
    if bad is not None:
        raise errors.InvalidArgumentError(f"parameter 'steps' must list non-negative integers of at most 15 digits, got {quote(bad)}")
    return [int(part) for part in parts]
