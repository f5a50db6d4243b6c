"""``FeatureMapsLogger``: logs a Keras model's feature maps from any training loop, one line per step."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Optional, Union

import keras
import numpy as np

from .. import distributed
from ..format import metadata
from ..render import strongest
from ..warning import warn
from ..writer import FeatureMapsWriter, LayerDescription, StageTimer, arguments, timed
from ..writer import probes as probes_lib
from .extractor import Extractor, LayerSpec, SelectedLayer, layer_kernel, select_layers
from .receptive import receptive_field


def _symbolic_inputs(model: keras.Model) -> Optional[list]:
    """The model's symbolic inputs, or None while it has none (unbuilt Sequential, subclassed)."""
    try:
        return list(model.inputs) or None
    except (AttributeError, ValueError):
        return None


class FeatureMapsLogger:
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
        log_dir, probes, labels, run_name, max_filters, max_tile_size, write_images,
            max_step_bytes, step_unit, resume, timer, background: as for :class:`~tb_featuremaps.FeatureMapsWriter`;
            the default probes (ten MNIST digits) are reshaped to the model's input
            when it holds 784 values.
        pool, pool_labels, top_k: the inputs whose strongest responses are found for
            every filter at each step (e.g. ``pool=x_val[:500]``; off by default), as for
            :class:`~tb_featuremaps.FeatureMapsWriter`. The pool goes through the model
            in batches of 128; patches follow each layer's receptive field.
        layers: Layer names or paths (``"backbone/conv1"``), compiled regexes, layer
            classes or layer objects; default: every convolution and (non-global)
            pooling layer, including those inside nested functional models, or for a
            deep model (more than 20) the first convolution and the last layer of each
            resolution stage; ``"all"``: every one.
        write_weights: Also log the kernels of convolution layers as grids.
        all_ranks: Log on every process of a distributed training (give each its own
            ``run_name``); by default only the chief does, and :meth:`log` does
            nothing on the others (``docs/distributed.md``).
    """

    def __init__(
        self,
        model: Optional[keras.Model],
        log_dir: Union[str, os.PathLike],
        probes: Any = None,
        labels: Optional[Sequence] = None,
        layers: Optional[Sequence[LayerSpec]] = None,
        *,
        run_name: str = metadata.DEFAULT_RUN_NAME,
        step_unit: str = "step",
        resume: bool = False,
        max_filters: int = 128,
        max_tile_size: int = 64,
        write_weights: bool = True,
        write_images: Union[bool, str] = "first",
        max_step_bytes: Optional[int] = arguments.DEFAULT_MAX_STEP_BYTES,
        pool: Any = None,
        pool_labels: Optional[Sequence] = None,
        top_k: Optional[int] = None,
        timer: Optional[StageTimer] = None,
        background: bool = True,
        all_ranks: bool = False,
        owner: str = "FeatureMapsLogger",
    ):
        arguments.labels_need_probes(owner, probes, labels)
        self.all_ranks = arguments.boolean(owner, "all_ranks", all_ranks)
        self.layers = arguments.layer_specs(owner, layers, keras.layers.Layer, "layer name or path")
        self.write_weights = arguments.boolean(owner, "write_weights", write_weights)
        self.writer = FeatureMapsWriter(
            log_dir,
            probes_lib.prepare(probes, labels, owner),
            run_name=run_name,
            step_unit=step_unit,
            resume=resume,
            max_filters=max_filters,
            max_tile_size=max_tile_size,
            write_images=write_images,
            max_step_bytes=max_step_bytes,
            pool=pool,
            pool_labels=pool_labels,
            top_k=top_k,
            timer=timer,
            background=background,
            owner=owner,
        )
        self._owner = owner
        self._timer = timer
        self._default_probes = probes is None
        self.model: Optional[keras.Model] = None
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
        if self.model is not None and model is not self.model:
            self.writer.new_run()
        self.model, self._extractor = model, None

    @property
    def layer_paths(self) -> list[str]:
        """The paths of the logged layers (their tags), in model order; traces the model if needed."""
        self.trace()
        return [item.path for item in self._extractor.layers]

    def trace(self) -> None:
        """Selects the layers and builds the extractor (done by the first :meth:`log`); raises ``ValueError`` for what cannot be logged."""
        if self._extractor is not None:
            return
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
        self._pooled = {item.path for item in self._extractor.layers if len(item.output_shape) in (3, 4)} if self.writer.pool is not None else set()
        self._descriptions = {item.path: self._description(model, item, chain) for item, chain in selected}
        max_filters = self.writer.max_filters
        capped = [f"{item.path} ({_filters(item)})" for item, _ in selected if _filters(item) > max_filters]
        if capped:
            warn(
                f"{self._owner} draws the first {max_filters} filters of: {', '.join(capped)}; raise max_filters= to draw more.",
            )

    def _description(self, model: keras.Model, item: SelectedLayer, chain: list) -> LayerDescription:
        """The layer's class, layout and shape, and with a pool its receptive field (for the strongest inputs' patches)."""
        found = receptive_field(model, item.layer, chain) if item.path in self._pooled else None
        if found is None or found.field is None:
            reason = found.reason if found is not None else ""
            return LayerDescription(type(item.layer).__name__, item.channels_first, item.output_shape, patch_reason=reason)
        return LayerDescription(type(item.layer).__name__, item.channels_first, item.output_shape, found.field, found.input_index)

    @property
    def writes(self) -> bool:
        """Whether this process logs: the chief of a distributed training (``docs/distributed.md``), or any with ``all_ranks=True``."""
        return self.all_ranks or distributed.is_chief()

    def log(self, step: int) -> bool:
        """Logs the selected layers at ``step`` (growing): runs the probes, queues the rest; returns whether it was accepted.

        On a process that does not write (:attr:`writes`) it does nothing and returns False.
        """
        if not self.writes:
            return False
        if self.model is None:
            raise ValueError(f"{self._owner} has no model to log; pass one to the constructor or to set_model().")
        self.trace()
        try:
            outputs = timed(self._timer, "forward", self._extractor, self.writer.probes.inputs)
            pool = timed(self._timer, "forward", self._pool_responses) if self.writer.pool is not None else {}
            kernels = timed(self._timer, "kernels", self._kernels) if self.write_weights else {}
        except Exception as error:  # a training loop matters more than one log event
            self.writer.report_failure(step, error)
            return False
        return self.writer.write(step, outputs, kernels, self._descriptions, pool)

    def _pool_responses(self) -> dict[str, strongest.Responses]:
        layouts = {path: self._descriptions[path].channels_first for path in self._pooled}
        return strongest.pool_responses(self._extractor, self.writer.pool.inputs, layouts, self.writer.max_filters)

    def _kernels(self) -> dict[str, np.ndarray]:
        found = {item.path: layer_kernel(item.layer) for item in self._extractor.layers}
        return {path: kernel for path, kernel in found.items() if kernel is not None}

    def close(self) -> None:
        """Closes the event file (a later :meth:`log` opens a new one) and reports the steps failures cost."""
        self.writer.close()


def _filters(item: SelectedLayer) -> int:
    shape = item.output_shape
    return int(shape[1] if item.channels_first and len(shape) >= 3 else shape[-1])
