"""Finds the layers to log in a Keras model and builds one extractor for their outputs.

Layers of nested functional sub-models are reached in stages: the outer stage
also returns the tensors fed into each nested model, which the nested model's
own stage then takes as its inputs (Keras cannot connect an inner layer's
output to the outer model's inputs directly).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import keras
import numpy as np

from ..warning import warn
from ..writer.arguments import describe_spec

CONVOLUTION_TYPES = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)
POOLING_TYPES = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
)
SPATIAL_LAYER_TYPES = CONVOLUTION_TYPES + POOLING_TYPES
"""Layers that can be logged by default (eligible): convolutions and (non-global) pooling."""

DEEP_NETWORK_LAYERS = 20
"""A model with more eligible layers than this logs, by default, only the first convolution and each resolution
stage's last layer (:func:`stage_ends`); ``layers="all"`` logs every eligible layer."""

ALL_LAYERS = "all"
"""``layers="all"``: every eligible layer, however deep the model."""

LayerSpec = Union[str, "re.Pattern[str]", type, keras.layers.Layer]


@dataclass
class SelectedLayer:
    """A layer to log: its unique path (the tag), the layer and its position in the model."""

    path: str
    layer: keras.layers.Layer
    index: int

    @property
    def channels_first(self) -> bool:
        return getattr(self.layer, "data_format", "channels_last") == "channels_first"

    @property
    def output_shape(self) -> list:
        """The output shape with a free batch axis (any number of probes goes through)."""
        return [None] + [None if dim is None else int(dim) for dim in self.layer.output.shape[1:]]


def _is_graph_model(layer: keras.layers.Layer) -> bool:
    """True for Functional and Sequential models, whose inner layers are reachable."""
    if not isinstance(layer, keras.Model):
        return False
    try:
        return bool(layer.inputs)
    except (AttributeError, ValueError):
        return False


def walk(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, keras.layers.Layer, list]]:
    """Yields ``(path, layer, chain)`` for every layer in model order, depth first.

    ``chain`` lists the nested models (outermost first) a layer lives in.
    """
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        if _is_graph_model(layer):
            for inner in walk(layer, f"{path}/"):
                yield inner[0], inner[1], [layer, *inner[2]]
        elif not isinstance(layer, keras.layers.InputLayer):
            yield path, layer, []


def _subclassed(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, keras.Model]]:
    """``(path, model)`` of every subclassed model nested in ``model``: its inner layers cannot be reached."""
    for layer in model.layers:
        if _is_graph_model(layer):
            yield from _subclassed(layer, f"{prefix}{layer.name}/")
        elif isinstance(layer, keras.Model):
            yield f"{prefix}{layer.name}", layer


def _inner_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in getattr(model, "layers", []):
        yield layer
        if isinstance(layer, keras.Model):
            yield from _inner_layers(layer)


def _unreachable(spec: LayerSpec, hidden: list[tuple[str, keras.Model]]) -> str:
    """Says which subclassed model hides the layers ``spec`` names (or that a spec of None would log), or ""."""
    for path, model in hidden:
        inner = [layer for layer in _inner_layers(model) if (_is_spatial_type(layer) if spec is None else _matches(spec, layer.name, layer))]
        if inner:
            what = f"its {len(inner)} convolution and pooling layers" if spec is None else f"{describe_spec(spec)}"
            return (
                f" '{path}' is a subclassed keras.Model nested in this model, and {what} inside it cannot be logged: a subclassed model's "
                f"inner layers have no symbolic outputs to read. Log its own output with layers=['{path}'], or build it with the "
                "Functional API (keras.Model(inputs, outputs))."
            )
    return ""


def _is_spatial_type(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, SPATIAL_LAYER_TYPES)


def _is_spatial(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, SPATIAL_LAYER_TYPES) and len(layer.output.shape) >= 3


def _matches(spec: LayerSpec, path: str, layer: keras.layers.Layer) -> bool:
    if isinstance(spec, str):
        return spec in (path, layer.name)
    if isinstance(spec, re.Pattern):
        return spec.fullmatch(path) is not None or spec.fullmatch(layer.name) is not None
    if isinstance(spec, type):
        return isinstance(layer, spec)
    return spec is layer


def select_layers(model: keras.Model, layers: Sequence[LayerSpec] | None, owner: str = "FeatureMapsCallback") -> list[tuple[SelectedLayer, list]]:
    """The layers to log with their nested-model chains, in model order.

    ``layers=None`` selects the eligible layers (:data:`SPATIAL_LAYER_TYPES`), or
    for a deep model (more than :data:`DEEP_NETWORK_LAYERS` of them) their
    :func:`stage_ends`, and says so once; ``layers="all"`` every eligible layer.
    Otherwise each entry is a layer name or path (``"backbone/conv1"``), a compiled
    regex matched against names and paths, a layer class, or a layer object; each
    must match.
    """
    found = list(walk(model))
    hidden = list(_subclassed(model))
    if layers is None or list(layers) == [ALL_LAYERS]:
        chosen = [(path, layer, chain) for path, layer, chain in found if _is_spatial(layer)]
        unreachable = _unreachable(None, hidden)
        if not chosen:
            raise ValueError(
                f"{owner} found no convolution or pooling layer in the model "
                f"(layers: {', '.join(path for path, _, _ in found) or 'none'}); pass layers=[...] "
                f"with the names of the layers to log.{unreachable}"
            )
        if layers is None and len(chosen) > DEEP_NETWORK_LAYERS:
            eligible, chosen = len(chosen), stage_ends(chosen)
            warn(
                f"{owner}: the model has {eligible} convolution and pooling layers; by default it logs {len(chosen)} of them, the first "
                f"convolution and the last layer of each resolution stage ({', '.join(path for path, _, _ in chosen)}). Pass "
                f"layers='all' to log all {eligible}, or layers=[...] to choose."
            )
        if unreachable:
            warn(f"{owner} logs {len(chosen)} layers;{unreachable}")
    else:
        for spec in layers:
            if not any(_matches(spec, path, layer) for path, layer, _ in found):
                raise ValueError(
                    f"{owner}: layers= names {describe_spec(spec)}, which is not in the model. "
                    f"Available layers: {', '.join(path for path, _, _ in found)}.{_unreachable(spec, hidden)}"
                )
        chosen = [(path, layer, chain) for path, layer, chain in found if any(_matches(s, path, layer) for s in layers)]
    selected = []
    for path, layer, chain in chosen:
        shape = layer.output.shape
        if len(shape) < 2:
            raise ValueError(f"{owner} cannot draw layer '{path}': its output {tuple(shape)} has no channel axis.")
        selected.append((SelectedLayer(path, layer, index=len(selected)), chain))
    return selected


def _spatial_size(layer: keras.layers.Layer) -> tuple:
    """The spatial axes of a layer's output (None where unknown)."""
    shape = tuple(layer.output.shape[1:])
    return shape[1:] if getattr(layer, "data_format", "channels_last") == "channels_first" else shape[:-1]


def stage_ends(chosen: list[tuple[str, Any, list]]) -> list[tuple[str, Any, list]]:
    """The default layers of a deep model: its first convolution and the last layer of each resolution stage.

    ``chosen``: the eligible ``(path, layer, chain)`` in model order. A stage is a
    run of consecutive layers whose maps have the same spatial size; 1×1 maps
    followed by larger ones (the gates of squeeze-and-excitation blocks) belong
    to no stage.
    """
    sizes = [_spatial_size(layer) for _, layer, _ in chosen]
    flat = [all(side == 1 for side in size) for size in sizes]
    staged = [i for i in range(len(chosen)) if not (flat[i] and not all(flat[i:]))]
    ends = {index for index, after in zip(staged, [*staged[1:], None]) if after is None or sizes[after] != sizes[index]}
    first = next((i for i, (_, layer, _) in enumerate(chosen) if isinstance(layer, CONVOLUTION_TYPES)), 0)
    return [chosen[i] for i in sorted(ends | {first})]


def _node_inputs(nested: keras.Model) -> list:
    """The tensors a nested model is called on in its parent's graph."""
    nodes = getattr(nested, "_inbound_nodes", [])
    if not nodes:
        raise ValueError(f"FeatureMapsCallback cannot reach inside '{nested.name}': it is not called in the outer model.")
    return list(nodes[0].input_tensors)


@dataclass
class _Stage:
    """One sub-model evaluated on the inputs of ``model`` (a model in the chain)."""

    model: keras.Model
    outputs: dict = field(default_factory=dict)  # key -> symbolic tensor
    children: dict = field(default_factory=dict)  # nested model name -> _Stage
    extractor: Any = None

    def build(self) -> None:
        for child in self.children.values():
            for position, tensor in enumerate(_node_inputs(child.model)):
                self.outputs[f"\0{child.model.name}/{position}"] = tensor
            child.build()
        self.extractor = keras.Model(inputs=self.model.inputs, outputs=self.outputs)

    def run(self, inputs: list, results: dict) -> None:
        # Eager, not the compiled predict function (2.5x faster on the post's model): TensorFlow's fused Conv2D + ReLU
        # kernels turn NaN into 0, which would hide the NaN activations the logs exist to show (benchmarks.md).
        values = self.extractor(inputs, training=False)
        for key, value in values.items():
            if not key.startswith("\0"):
                results[key] = keras.ops.convert_to_numpy(value)
        for name, child in self.children.items():
            feed = [values[f"\0{name}/{position}"] for position in range(len(child.model.inputs))]
            child.run(feed, results)


class Extractor:
    """Computes the outputs of the selected layers for a batch of probes.

    Built once per model and reused for every log event.
    """

    def __init__(self, model: keras.Model, selected: Iterable[tuple[SelectedLayer, list]]):
        self.layers: list[SelectedLayer] = []
        self._root = _Stage(model)
        for item, chain in selected:
            stage = self._root
            for nested in chain:
                stage = stage.children.setdefault(nested.name, _Stage(nested))
            stage.outputs[item.path] = item.layer.output
            self.layers.append(item)
        self._root.build()

    def __call__(self, inputs: list) -> dict[str, np.ndarray]:
        """Maps each selected layer's path to its float32 output for ``inputs``."""
        results: dict[str, np.ndarray] = {}
        self._root.run(list(inputs), results)
        return {item.path: results[item.path].astype(np.float32, copy=False) for item in self.layers}


def layer_kernel(layer: keras.layers.Layer) -> np.ndarray | None:
    """A convolution's kernel as ``[*spatial, in, out]`` (``writer.kernel_maps`` draws it), or None for other layers.

    Depthwise and separable layers give their depthwise kernels (one "output"
    per input channel and multiplier, over one "input"); transposed
    convolutions their kernels with the in and out axes swapped back.
    """
    if isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)):
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        return kernel.reshape(*kernel.shape[:-2], 1, -1)
    if isinstance(layer, (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)):
        kernel = keras.ops.convert_to_numpy(layer.depthwise_kernel)
        return kernel.reshape(*kernel.shape[:-2], 1, -1)
    if isinstance(layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)):
        return np.swapaxes(keras.ops.convert_to_numpy(layer.kernel), -1, -2)
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
        return keras.ops.convert_to_numpy(layer.kernel)
    return None
