"""``FeatureMapsLogger``: logs a Keras model's feature maps from any training loop, one line per step."""

from __future__ import annotations

import os
from typing import Any, Optional, Union

import keras
import numpy as np

from ..producer import Producer, Traced
from ..writer import LayerDescription
from ..writer import options as options_lib
from ..writer import probes as probes_lib
from .extractor import Extractor, SelectedLayer, layer_kernel, select_layers
from .receptive import receptive_field


def _symbolic_inputs(model: keras.Model) -> Optional[list]:
    """The model's symbolic inputs, or None while it has none (unbuilt Sequential, subclassed)."""
    try:
        return list(model.inputs) or None
    except (AttributeError, ValueError):
        return None


@options_lib.takes()
class FeatureMapsLogger(Producer):
    """Logs the feature maps of a Keras model's layers for fixed probes, from any training loop.

    Each :meth:`log` call runs the probes through the model once (inference mode)
    and writes every selected layer's grids, statistics and kernels through a
    :class:`~tb_featuremaps.FeatureMapsWriter`. It selects layers, traces nested
    functional models and handles probes as ``FeatureMapsCallback`` does (which
    is this logger driven by ``fit``'s hooks). A failure while logging warns and
    returns False; training goes on.

    Example (a ``tf.GradientTape`` or any custom loop):

    ```python
    from tb_featuremaps import FeatureMapsLogger

    logger = FeatureMapsLogger(model, "logs", probes=x_val[:8])
    for step, (x, y) in enumerate(dataset):
        train_step(x, y)
        if step % 100 == 0:
            logger.log(step)
    logger.close()
    # then: tensorboard --logdir logs
    ```

    Args:
        model: A Sequential or Functional Keras model (or None, then :meth:`set_model`).
        log_dir: Directory TensorBoard reads; the run is ``log_dir/run_name``.
        probes, labels: as for ``FeatureMapsCallback``; the default probes (ten MNIST
            digits) are reshaped to the model's input when it holds 784 values.
        layers: Layer names or paths (``"backbone/conv1"``), compiled regexes, layer
            classes or layer objects; default: every convolution and (non-global)
            pooling layer, including those inside nested functional models, or for a
            deep model (more than 20) the first convolution and the last layer of each
            resolution stage; ``"all"``: every one.
        pool: The pool goes through the model in batches of 128; patches follow each
            layer's receptive field.
        all_ranks: With it False, :meth:`log` does nothing on the processes other
            than the chief (``docs/distributed.md``).
        options: An :class:`~tb_featuremaps.Options` holding options at once.
        owner: The class error messages name.
    """

    LAYER_TYPE = keras.layers.Layer
    LAYER_ENTRY = "layer name or path"

    def __init__(
        self,
        model: Optional[keras.Model],
        log_dir: Union[str, os.PathLike],
        probes: Any = None,
        labels: Any = None,
        layers: Any = None,
        *,
        options: Optional[options_lib.Options] = None,
        owner: str = "FeatureMapsLogger",
        **given: Any,
    ):
        super().__init__(log_dir, options_lib.collect(type(self), owner, options, given, probes=probes, labels=labels, layers=layers))
        self._extractor: Optional[Extractor] = None  # None until the model is traced
        if model is not None:
            self.set_model(model)

    def set_model(self, model: keras.Model) -> None:
        """Logs ``model`` from now on; a model after another one starts a new run folder."""
        if not isinstance(model, keras.Sequential) and not _symbolic_inputs(model):
            raise ValueError(
                f"{self._owner} cannot trace the {type(model).__name__} model: it has no symbolic inputs "
                "(a subclassed model). Build the network with the Sequential or Functional API, "
                "or wrap its layers in keras.Model(inputs, outputs)."
            )
        self._set_model(model)
        self._extractor = None

    def _select(self, timer: Any) -> Traced:
        """Selects the layers and builds the extractor; fits the probes and the pool to the model's inputs."""
        model = self.model
        if isinstance(model, keras.Sequential) and not model.built:
            # Keras builds a Sequential model without an Input only when it traces the first batch;
            # build it now, from the probes' shape, so that step 0 shows the initial state.
            # The default digits build it for 28x28x1 images.
            shape = self.writer.probes.inputs[0].shape[1:]
            model.build((None, *shape, 1) if self._default_probes else (None, *shape))
        inputs = _symbolic_inputs(model)
        if not inputs:
            raise ValueError(
                f"{self._owner} cannot trace the {type(model).__name__} model: building it for the probes' shape gave it no "
                "symbolic inputs; start it with keras.Input(shape)."
            )
        shapes, names = [tuple(tensor.shape) for tensor in inputs], [tensor.name for tensor in inputs]
        self.writer.probes = probes_lib.fit_to_model(self.writer.probes, shapes, self._default_probes, names, self._owner)
        selected = select_layers(model, self.layers, self._owner)
        self._extractor = Extractor(model, selected)
        formats = [item.channels_first for item in self._extractor.layers if hasattr(item.layer, "data_format")]
        self.writer.probes_channels_first = formats[0] if formats else keras.config.image_data_format() == "channels_first"
        if self.writer.pool is not None:
            self.writer.pool = probes_lib.fit_to_model(self.writer.pool, shapes, False, names, self._owner, "pool")
        self._layers = {item.path: item.layer for item, _ in selected}
        return Traced({item.path: self._description(model, item, chain) for item, chain in selected})

    def _description(self, model: keras.Model, item: SelectedLayer, chain: list) -> LayerDescription:
        """The layer's class, layout and shape, and with a pool its receptive field (for the strongest inputs' patches)."""
        pooled = self.writer.pool is not None and len(item.output_shape) in (3, 4)
        found = receptive_field(model, item.layer, chain) if pooled else None
        if found is None or found.field is None:
            reason = found.reason if found is not None else ""
            return LayerDescription(type(item.layer).__name__, item.channels_first, item.output_shape, patch_reason=reason)
        return LayerDescription(type(item.layer).__name__, item.channels_first, item.output_shape, found.field, found.input_index)

    def _forward(self, inputs: Optional[list], paths: list[str]) -> dict[str, np.ndarray]:
        return self._extractor(self.writer.probes.inputs if inputs is None else inputs)

    def _kernel(self, path: str) -> Optional[np.ndarray]:
        return layer_kernel(self._layers[path])
