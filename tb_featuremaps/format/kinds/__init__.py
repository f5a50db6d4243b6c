"""The series kinds of the format, one module each, and their registry: who reads or writes a series asks here.

Each kind module (``activations``, ``weights``, ``strongest``, ``stats``, ``topk``, ``change``, ``responses``,
``pool``, ``probes``) holds its kind's name, description, fields, rank, the grid it is written with, its thresholds
and the helpers that apply them, and one ``KIND`` (a :mod:`.base` ``GridKind``, ``TensorKind`` or
``PicturesKind``). The writer builds a series' metadata with its kind (``TensorKind.metadata``), the reader
and the plugin classify, cut and align values with it (``metadata.classify``, ``TensorKind.aligned``), and
the panel gets :func:`describe` in the ``runs`` listing.

Adding a kind:

1. write its module here (``NAME``, ``KIND``, its fields and rules, each stated once) and add ``KIND``
   to :data:`KINDS` below;
2. document it in docs/format.md, pointing to the module;
3. give it a panel view (``plugin/static/``), which reads its fields and constants from the listing's
   ``kinds``.

A kind this version does not know is skipped by every reader, so older readers keep reading newer logs.
"""

from __future__ import annotations

from typing import Any, Optional

from . import activations, change, pool, probes, responses, stats, strongest, topk, weights
from .base import GridKind, Kind, PicturesKind, TensorKind

KINDS: dict[str, Kind] = {module.KIND.name: module.KIND for module in (activations, weights, strongest, stats, topk, change, responses, probes, pool)}
"""Every kind this version knows, by name (grids, then tensors, then pictures)."""


def lookup(name: Any) -> Optional[Kind]:
    """The kind called ``name``; None for one this version does not know (its series are skipped)."""
    return KINDS.get(name) if isinstance(name, str) else None


def of_type(kind_type: type) -> tuple[str, ...]:
    """The names of the kinds that are ``kind_type`` (:class:`GridKind`, :class:`TensorKind`, :class:`PicturesKind`)."""
    return tuple(name for name, kind in KINDS.items() if isinstance(kind, kind_type))


def tensor_kind(name: str) -> TensorKind:
    """The tensor kind called ``name``; KeyError for any other name."""
    kind = KINDS.get(name)
    if not isinstance(kind, TensorKind):
        raise KeyError(f"{name!r} is not a tensor kind; tensor kinds: {', '.join(of_type(TensorKind))}")
    return kind


def written_with(grid: str) -> tuple[str, ...]:
    """The tensor kinds written in one event with the grid kind ``grid`` (stats and change with activations)."""
    return tuple(name for name, kind in KINDS.items() if isinstance(kind, TensorKind) and kind.grid == grid)


def describe() -> dict[str, dict[str, Any]]:
    """Every kind's description for the panel, by name (:meth:`Kind.to_json`)."""
    return {name: kind.to_json() for name, kind in KINDS.items()}


__all__ = ["KINDS", "GridKind", "Kind", "PicturesKind", "TensorKind", "describe", "lookup", "of_type", "tensor_kind", "written_with"]
