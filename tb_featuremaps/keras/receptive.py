"""The receptive field of a layer's output units in the input image, from the Keras functional graph.

:func:`receptive_field` walks the graph backwards from the layer's output to the
model's inputs: convolutions and pooling grow and stride the field, padding and
cropping shift it, pointwise layers pass it through and merges take the union of
their inputs' fields. Any other layer on the way (upsampling, transposed
convolutions, reshapes, global pooling, ``Lambda``, custom layers) stops it.

The field is the usual bounding box: a unit may depend on fewer of its pixels
(the gaps of a dilated kernel; pixels reached only through padding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import keras

from ..format.metadata import ReceptiveField
from .extractor import _is_graph_model

_CONVOLUTIONS = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)
_POOLING = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.AveragePooling1D, keras.layers.AveragePooling2D)
_SHIFTS = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.Cropping1D, keras.layers.Cropping2D)
_THREE_D = (
    keras.layers.Conv3D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling3D,
    keras.layers.ZeroPadding3D,
    keras.layers.Cropping3D,
)
_POINTWISE = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.UnitNormalization,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.Softmax,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.ActivityRegularization,
    keras.layers.Rescaling,
    keras.layers.Normalization,
    keras.layers.Identity,
)
_MERGES = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
)

_FOLLOWED = _CONVOLUTIONS + _POOLING + _SHIFTS + _POINTWISE + _MERGES + (keras.layers.Dense,)
"""The layers a field goes through."""


@dataclass(frozen=True)
class FieldResult:
    """The receptive field of a layer's output units, or why it cannot be computed."""

    field: Optional[ReceptiveField]
    """None where it cannot be computed."""
    input_index: int
    """Which of ``model.inputs`` the field refers to."""
    reason: str
    """"" when computed; else what stopped it, naming the layer."""


@dataclass(frozen=True)
class _Path:
    """A field computed for a tensor: of which graph input, and the tensor's layout."""

    input_index: int
    field: ReceptiveField
    channels_first: bool


_Result = Union[_Path, str]
"""A computed field, or the reason it cannot be computed."""


def _cannot(operation: keras.Operation, why: str = "") -> str:
    return f"cannot follow '{operation.name}' ({type(operation).__name__}){': ' + why if why else ''}"


def _spatial(shape: tuple, channels_first: bool) -> tuple:
    return tuple(shape[2:] if channels_first else shape[1:-1])


def _compose(outer: _Result, inner: _Result) -> _Result:
    """The field in ``outer``'s input of the units whose field in ``outer``'s tensor is ``inner``."""
    if isinstance(inner, str):
        return inner
    if isinstance(outer, str):
        return outer
    o, i = outer.field, inner.field
    field = ReceptiveField(
        size=tuple(so + (si - 1) * jo for so, si, jo in zip(o.size, i.size, o.jump)),
        jump=tuple(jo * ji for jo, ji in zip(o.jump, i.jump)),
        start=tuple(to + ti * jo for to, ti, jo in zip(o.start, i.start, o.jump)),
    )
    return _Path(outer.input_index, field, inner.channels_first)


def _window(layer: keras.layers.Layer, source: _Path, tensor: keras.KerasTensor) -> _Result:
    """Through a convolution or a pooling layer applied to ``tensor``."""
    pooling = isinstance(layer, _POOLING)
    kernels = tuple(layer.pool_size if pooling else layer.kernel_size)
    strides = tuple(layer.strides)
    dilations = (1,) * len(kernels) if pooling else tuple(layer.dilation_rate)
    channels_first = layer.data_format == "channels_first"
    padding = []
    for n, k, s, d in zip(_spatial(tensor.shape, channels_first), kernels, strides, dilations):
        if layer.padding == "causal":
            padding.append((k - 1) * d)
        elif layer.padding == "same":
            if n is None and s > 1:
                return _cannot(layer, "its 'same' padding depends on an input size that is unknown")
            total = (k - 1) * d if n is None else max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            padding.append(total // 2)
        else:
            padding.append(0)
    window = ReceptiveField(tuple((k - 1) * d + 1 for k, d in zip(kernels, dilations)), strides, tuple(-p for p in padding))
    return _compose(source, _Path(source.input_index, window, channels_first))


def _shift(layer: keras.layers.Layer, source: _Path) -> _Result:
    """Through zero padding (the field moves into the padding) or cropping."""
    cropping = isinstance(layer, (keras.layers.Cropping1D, keras.layers.Cropping2D))
    amounts = layer.cropping if cropping else layer.padding
    leading = (amounts[0],) if isinstance(amounts[0], int) else tuple(pair[0] for pair in amounts)
    sign = 1 if cropping else -1
    start = tuple(t + sign * a * j for t, a, j in zip(source.field.start, leading, source.field.jump))
    channels_first = getattr(layer, "data_format", "channels_last") == "channels_first"
    return _Path(source.input_index, ReceptiveField(source.field.size, source.field.jump, start), channels_first)


def _broadcast(tensor: keras.KerasTensor, output: keras.KerasTensor, channels_first: bool) -> bool:
    """True for a merge input that is 1 along every spatial axis while the output is not (a gate, a bias)."""
    shape = (1,) * (len(output.shape) - len(tensor.shape)) + tuple(tensor.shape)
    spatial, out = _spatial(shape, channels_first), _spatial(output.shape, channels_first)
    return all(dim == 1 for dim in spatial) and not all(dim == 1 for dim in out)


def _merge(layer: keras.layers.Layer, tensors: list, results: list, output: keras.KerasTensor) -> _Result:
    """The union of the fields of a merge's inputs, leaving out broadcast inputs and those of later graph inputs."""
    computed = [result for result in results if isinstance(result, _Path)]
    if not computed:
        return results[0]
    channels_first = computed[0].channels_first
    if isinstance(layer, keras.layers.Concatenate) and layer.axis % len(output.shape) != (1 if channels_first else len(output.shape) - 1):
        return _cannot(layer, "it concatenates along a spatial axis")
    kept = [result for tensor, result in zip(tensors, results) if not _broadcast(tensor, output, channels_first)]
    for result in kept:
        if isinstance(result, str):
            return result
    first = min(path.input_index for path in kept)
    fields = [path.field for path in kept if path.input_index == first]
    if len({field.jump for field in fields}) > 1:
        return f"cannot merge at '{layer.name}' ({type(layer).__name__}): its inputs step at different jumps {sorted({f.jump for f in fields})}"
    if len({len(field.size) for field in fields}) > 1:
        return _cannot(layer, "its inputs have different numbers of spatial axes")
    starts = tuple(min(axis) for axis in zip(*(field.start for field in fields)))
    ends = tuple(max(axis) for axis in zip(*((t + s for t, s in zip(field.start, field.size)) for field in fields)))
    size = tuple(end - start for start, end in zip(starts, ends))
    return _Path(first, ReceptiveField(size, fields[0].jump, starts), channels_first)


class _Graph:
    """Fields of the tensors of one functional model relative to its own inputs, memoized per tensor."""

    def __init__(self, model: keras.Model, graphs: dict):
        self.model = model
        self.graphs = graphs
        self.inputs = {id(tensor): index for index, tensor in enumerate(model.inputs)}
        self.memo: dict[int, _Result] = {}
        self.keep: list = []  # the tensors memoized, so that their ids stay theirs

    def resolve(self, tensor: keras.KerasTensor) -> _Result:
        """The field of ``tensor``, walking the graph iteratively (deep graphs would overflow the stack)."""
        stack = [tensor]
        while stack:
            current = stack[-1]
            if id(current) in self.memo:
                stack.pop()
                continue
            needed = [t for t in self._dependencies(current) if id(t) not in self.memo]
            if needed:
                stack.extend(needed)
                continue
            self.memo[id(current)] = self._step(current)
            self.keep.append(current)
            stack.pop()
        return self.memo[id(tensor)]

    def _node(self, tensor: keras.KerasTensor) -> tuple:
        """``(operation, node, output index)`` that made ``tensor``; no operation for a graph input."""
        history = getattr(tensor, "_keras_history", None)
        if history is None or id(tensor) in self.inputs:
            return None, None, 0
        operation, node_index, tensor_index = history
        return operation, operation._inbound_nodes[node_index], tensor_index

    def _inner(self, nested: keras.Model, tensor_index: int) -> _Result:
        """The field of a nested model's output relative to the nested model's own inputs."""
        return _graph(nested, self.graphs).resolve(keras.tree.flatten(nested.outputs)[tensor_index])

    def _dependencies(self, tensor: keras.KerasTensor) -> list:
        operation, node, tensor_index = self._node(tensor)
        if operation is None:
            return []
        tensors = list(node.input_tensors)
        if _is_graph_model(operation):
            inner = self._inner(operation, tensor_index)
            return [tensors[inner.input_index]] if isinstance(inner, _Path) else []
        return tensors if isinstance(operation, _FOLLOWED) else []

    def _step(self, tensor: keras.KerasTensor) -> _Result:
        """The field of ``tensor`` from those of the inputs of the layer that made it (already memoized)."""
        operation, node, tensor_index = self._node(tensor)
        if operation is None:
            return self._source(tensor)
        tensors = list(node.input_tensors)
        if _is_graph_model(operation):
            inner = self._inner(operation, tensor_index)
            return _compose(self.memo[id(tensors[inner.input_index])], inner) if isinstance(inner, _Path) else inner
        if isinstance(operation, _THREE_D):
            return _cannot(operation, "3-D fields are not computed")
        if not isinstance(operation, _FOLLOWED) or (len(tensors) != 1 and not isinstance(operation, _MERGES)):
            return _cannot(operation)
        results = [self.memo[id(t)] for t in tensors]
        if isinstance(operation, _MERGES):
            return _merge(operation, tensors, results, tensor)
        source = results[0]
        if isinstance(source, str):
            return source
        if isinstance(operation, _CONVOLUTIONS + _POOLING):
            return _window(operation, source, tensors[0])
        if isinstance(operation, keras.layers.Dense) and (len(tensors[0].shape) < 3 or source.channels_first):
            return _cannot(operation, "it mixes spatial positions")
        if isinstance(operation, _POINTWISE + (keras.layers.Dense,)):
            return source
        return _shift(operation, source)

    def _source(self, tensor: keras.KerasTensor) -> _Result:
        """A graph input: every unit sees itself."""
        if id(tensor) not in self.inputs:
            return f"'{getattr(tensor, 'name', tensor)}' is not computed from the inputs of '{self.model.name}'"
        axes = len(tensor.shape) - 2
        if axes not in (1, 2):
            return f"input '{tensor.name}' of '{self.model.name}' has {max(axes, 0)} spatial axes (fields are computed for 1 or 2)"
        channels_first = keras.config.image_data_format() == "channels_first"
        return _Path(self.inputs[id(tensor)], ReceptiveField((1,) * axes, (1,) * axes, (0,) * axes), channels_first)


def _graph(model: keras.Model, graphs: dict) -> _Graph:
    """The memoizing walker of ``model``'s graph, one per model and call of :func:`receptive_field`."""
    if id(model) not in graphs:
        graphs[id(model)] = _Graph(model, graphs)
    return graphs[id(model)]


def receptive_field(model: keras.Model, layer: keras.layers.Layer, chain: list) -> FieldResult:
    """The receptive field of ``layer``'s output units in ``model``'s input.

    ``chain`` lists the nested functional models ``layer`` lives in, outermost
    first (as :func:`extractor.select_layers` gives it): the field is computed in
    the innermost one and composed outwards with the fields of the tensors each
    parent feeds into it.
    """
    graphs: dict = {}
    models = [model, *chain]
    result = _graph(models[-1], graphs).resolve(keras.tree.flatten(layer.output)[0])
    for outer, nested in zip(reversed(models[:-1]), reversed(models[1:])):
        if isinstance(result, str):
            break
        feed = list(nested._inbound_nodes[0].input_tensors)[result.input_index]
        result = _compose(_graph(outer, graphs).resolve(feed), result)
    if isinstance(result, str):
        return FieldResult(None, 0, result)
    return FieldResult(result.field, result.input_index, "")
