"""Checks of what :meth:`FeatureMapsWriter.write` is given, at the API boundary: a ``ValueError`` naming the argument and the fix.

Everything here is cheap (shapes and types only): a step that passes cannot make
every later step fail, or write a series a reader refuses.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np

from ..format import metadata
from ..render import strongest


def shape_of(values: Any) -> tuple:
    """The shape of an array, a framework tensor or nested lists, without copying an array to host memory."""
    shape = getattr(values, "shape", None)
    return tuple(int(size) for size in shape) if shape is not None else np.shape(values)


def layer_names(owner: str, argument: str, values: Mapping) -> None:
    """Refuses a mapping that is not keyed by non-empty layer paths (strings)."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{owner}: {argument}= must be a dict of layer path → array, got {type(values).__name__}.")
    for key in values:
        if not isinstance(key, str) or not key:
            raise ValueError(f"{owner}: {argument}= is keyed by {key!r}; key each layer by its path, a non-empty string (e.g. 'conv1').")


def channel_axis(description: Any) -> int:
    return 1 if description is not None and description.channels_first else -1


def activations(owner: str, values: Mapping, layers: Mapping, probes: int) -> None:
    """Each layer's output is ``[probes, ..., channels]`` (or channels first), numeric, with no empty axis."""
    layer_names(owner, "activations", values)
    for path, array in values.items():
        shape = shape_of(array)
        if len(shape) < 2 or shape[0] != probes:
            raise ValueError(
                f"{owner}: activations['{path}'] has shape {shape}; pass each layer's output for the {probes} probes, "
                f"[{probes}, ..., channels] (the probes' axis first)."
            )
        if 0 in shape:
            where = "0 channels" if shape[channel_axis(layers.get(path))] == 0 else "an empty axis"
            raise ValueError(
                f"{owner}: activations['{path}'] has shape {shape}, with {where}; pass layers with at least one filter and one value per map."
            )
        dtype = getattr(array, "dtype", None)
        if dtype is not None and isinstance(dtype, np.dtype) and not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
            raise ValueError(f"{owner}: activations['{path}'] is {dtype}; pass numeric arrays.")


def pool_activations(owner: str, values: Mapping, activations: Mapping, layers: Mapping, pool: int, max_filters: int) -> None:
    """Each layer's pool output is ``[pool, ..., channels]`` (or :class:`Responses` of the whole pool) with the layer's filters."""
    layer_names(owner, "pool_activations", values)
    for path, array in values.items():
        if path not in activations:
            raise ValueError(
                f"{owner}: pool_activations= holds '{path}', which activations= does not; pass a layer's pool output with its activations."
            )
        channel = channel_axis(layers.get(path))
        if isinstance(array, strongest.Responses):
            count, filters = array.values.shape[0], array.values.shape[1]  # reduced already: the filters drawn
        else:
            shape = shape_of(array)
            count, filters = (shape[0], shape[channel]) if len(shape) >= 2 else (None, None)
        if count != pool:
            raise ValueError(
                f"{owner}: pool_activations['{path}'] is for {count} inputs but the pool holds {pool}; pass the layer's output for the "
                "writer's whole pool= (in its order)."
            )
        expected = shape_of(activations[path])[channel]
        if isinstance(array, strongest.Responses):
            expected = min(expected, max_filters)
        if filters is not None and filters != expected:
            raise ValueError(
                f"{owner}: pool_activations['{path}'] has {filters} filters but activations['{path}'] has {expected}; pass outputs of the same layer."
            )


def _integers(value: Any, count: int) -> bool:
    return (
        isinstance(value, (tuple, list)) and len(value) == count and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    )


def description(owner: str, path: str, value: Any, pool_inputs: Optional[list]) -> None:
    """A :class:`LayerDescription`'s fields are of their types; its receptive field has positive sizes and jumps, for a pool input."""
    from .writer import LayerDescription  # the dataclass lives with the writer

    where = f"layers['{path}']"
    if not isinstance(value, LayerDescription):
        raise ValueError(f"{owner}: {where} is {type(value).__name__}; pass a LayerDescription.")
    if not isinstance(value.layer_class, str) or not isinstance(value.patch_reason, str):
        raise ValueError(f"{owner}: {where}.layer_class and .patch_reason must be strings, got {value.layer_class!r}, {value.patch_reason!r}.")
    shape = value.output_shape
    if shape is not None and (
        not isinstance(shape, (list, tuple)) or not all(size is None or isinstance(size, numbers.Integral) and size >= 0 for size in shape)
    ):
        raise ValueError(f"{owner}: {where}.output_shape must be a list of sizes (None for the batch axis), got {shape!r}.")
    if pool_inputs is not None:
        _receptive_input(owner, where, value.receptive_input, pool_inputs)
    field = value.receptive_field
    if field is None:
        return
    if not isinstance(field, metadata.ReceptiveField):
        raise ValueError(f"{owner}: {where}.receptive_field must be a metadata.ReceptiveField, got {type(field).__name__}.")
    axes = len(field.size) if isinstance(field.size, (tuple, list)) else 0
    if axes not in (1, 2) or not all(_integers(part, axes) for part in (field.size, field.jump, field.start)):
        raise ValueError(f"{owner}: {where}.receptive_field needs size, jump and start of 1 or 2 integers each, got {field!r}.")
    if min(field.size) < 1 or min(field.jump) < 1:
        raise ValueError(f"{owner}: {where}.receptive_field's size and jump must be positive (input pixels), got {field!r}.")


def _receptive_input(owner: str, where: str, index: Any, pool_inputs: list) -> None:
    """``receptive_input`` names a pool input that has pictures."""
    if not isinstance(index, numbers.Integral) or isinstance(index, bool) or not 0 <= index < len(pool_inputs):
        raise ValueError(f"{owner}: {where}.receptive_input is {index!r} but the pool has {len(pool_inputs)} input(s); pass the index of one.")
    if np.ndim(pool_inputs[index]) not in (3, 4):
        raise ValueError(
            f"{owner}: {where}.receptive_input names pool input {index}, shaped {np.shape(pool_inputs[index])}: only images [N, H, W, C] "
            "or sequences [N, L, C] have patches; pass the index of one."
        )


def pool_inputs(owner: str, inputs: list) -> None:
    """The pool's first input (drawn as its pictures) is images ``[N, H, W, C]`` or sequences ``[N, L, C]`` (or channels first)."""
    shape = np.shape(inputs[0])
    if len(shape) not in (3, 4):
        hint = " (a list is one array per model input: pass np.asarray(pool) for one input)" if len(inputs) > 1 else ""
        raise ValueError(
            f"{owner}: pool= is shaped {shape}{hint}; the strongest inputs need images [N, H, W, C] or sequences [N, L, C] "
            "(channels first with probes_channels_first=True), N inputs first."
        )
