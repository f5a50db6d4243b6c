"""Validation of the producers' constructor arguments: a clear ``ValueError`` naming the argument and the fix."""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any, Optional

import numpy as np

from ..format import metadata


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


MAX_STEP = 2**63 - 1
"""The largest step an event file holds (an ``int64``)."""


def step(owner: str, value: Any) -> int:
    """A non-negative integer step (NumPy integers and 0-d integer arrays or tensors too)."""
    if not _is_integer(value) and np.ndim(value) == 0 and np.issubdtype(np.asarray(value).dtype, np.integer):
        value = int(np.asarray(value))
    if not _is_integer(value) or value < 0:
        raise ValueError(f"{owner}: step must be a non-negative integer, got {value!r}.")
    if value > MAX_STEP:
        raise ValueError(f"{owner}: step {value} is too large; TensorBoard stores steps as int64, so pass a step up to 2**63 - 1.")
    return int(value)


def boolean(owner: str, name: str, value: Any) -> bool:
    """``True`` or ``False`` (NumPy booleans too); a string such as ``"false"`` is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}.")
    return bool(value)


DEFAULT_MAX_STEP_BYTES = 4 * 2**20
"""``max_step_bytes=``'s default, 4 MiB: about 15x a step of the post's model with the defaults
(280 KB), so a small or medium CNN never reaches it, while a large network that would log tens of
MB per step (MobileNetV2 with ten probes: 18 MB) is told which knobs bound it."""


def images(owner: str, value: Any) -> Any:
    """``write_images=``: ``True`` (every probe), ``False`` (none) or ``"first"`` (the first probe only)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value == "first":
        return value
    raise ValueError(f'{owner}: write_images must be True (a copy per probe), False (none) or "first" (the first probe\'s only), got {value!r}.')


def optional_positive_integer(owner: str, name: str, value: Any) -> Optional[int]:
    """None or a positive integer (NumPy integers too, booleans not)."""
    return None if value is None else positive_integer(owner, name, value)


def choice(owner: str, name: str, value: Any, allowed: Sequence[str]) -> str:
    """One of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}.")
    return value


def layer_specs(owner: str, value: Any, layer_type: type, entry: str) -> Optional[list]:
    """``layers=``: None, one spec, or a non-empty iterable of specs: names (``entry`` says which), regexes, classes, ``layer_type`` objects."""
    kinds = (str, type, re.Pattern, layer_type)
    if value is None:
        return None
    if isinstance(value, kinds):
        return [value]
    if not isinstance(value, Iterable):
        raise ValueError(f"{owner}: layers must be a list of {entry}s, regexes, classes or {layer_type.__name__} objects, got {value!r}.")
    value = list(value)
    if not value:
        raise ValueError(f"{owner}: layers is empty; pass layers=None for every convolution and pooling layer, or name at least one.")
    for spec in value:
        if not isinstance(spec, kinds):
            raise ValueError(f"{owner}: layers= holds {spec!r}; each entry must be a {entry}, a compiled regex, a class or a {layer_type.__name__}.")
    return value


def describe_spec(spec: Any) -> str:
    """A ``layers=`` entry as an error message names it."""
    if isinstance(spec, str):
        return repr(spec)
    if isinstance(spec, re.Pattern):
        return f"the pattern {spec.pattern!r}"
    if isinstance(spec, type):
        return f"the class {spec.__name__}"
    return f"the {type(spec).__name__} object {getattr(spec, 'name', '') or ''}".rstrip()


DEFAULT_TOP_K = 9
"""``top_k=``'s default: strongest pool inputs kept per filter and step."""


def top_k(owner: str, value: Any, pool: Any) -> int:
    """``top_k=``: None (:data:`DEFAULT_TOP_K`) or a positive integer, given only with ``pool=``."""
    if value is None:
        return DEFAULT_TOP_K
    if pool is None:
        raise ValueError(
            f"{owner}: top_k= was given without pool=; top_k is how many of the pool's strongest inputs are kept per filter. "
            "Pass pool= (e.g. x_val[:500]) with it, or leave top_k= out."
        )
    value = positive_integer(owner, "top_k", value)
    if value > metadata.MAX_TOP_K:
        raise ValueError(
            f"{owner}: top_k={value} is more than a reader takes ({metadata.MAX_TOP_K} ranks per filter, docs/format.md); "
            f"pass top_k={metadata.MAX_TOP_K} or fewer."
        )
    return value


def labels_need_probes(owner: str, probes: Any, labels: Any, what: str = "probes") -> None:
    """Refuses ``labels=`` without ``probes=`` (or ``pool_labels=`` without ``pool=``)."""
    if labels is None or probes is not None:
        return
    if what == "pool":
        raise ValueError(
            f"{owner}: pool_labels= was given without pool=; pass pool= (e.g. x_val[:500]) together with pool_labels=, one label per input."
        )
    raise ValueError(
        f"{owner}: labels= was given without probes=; the default probes (ten MNIST digits) carry their own labels. "
        "Pass probes= together with labels=, one label per probe."
    )
