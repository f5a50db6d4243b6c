"""``FeatureMapsCallback``: logs what a convolutional network sees while it trains."""

from __future__ import annotations

import json
import numbers
import os
import re
import warnings
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union

import keras
import numpy as np
from tensorboard.compat import tf as tb_tf

from . import grid, metadata, runs
from . import probes as probes_lib
from .extractor import Extractor, LayerSpec, SelectedLayer, kernel_maps, select_layers
from .summary import SummaryWriter

_WRITING: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
"""Run directory -> the callback writing it during a ``fit`` (to catch two in one ``fit``)."""


def is_chief() -> bool:
    """False on the non-chief workers of a multi-worker ``tf.distribute`` cluster."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError:
        return True
    cluster, task = config.get("cluster") or {}, config.get("task") or {}
    if not task:
        return True
    kind, index = task.get("type"), int(task.get("index", 0))
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in cluster


def layer_info(kind: str, item: SelectedLayer, drawn: grid.DrawnLayer, labels: list, step_unit: str) -> metadata.LayerInfo:
    """The constant description of ``item``'s ``kind`` series, laid out for ``drawn``."""
    return metadata.LayerInfo(
        kind=kind,
        layer=item.path,
        layer_class=type(item.layer).__name__,
        index=item.index,
        output_shape=item.output_shape,
        layout=drawn.layout(),
        filters_shown=int(drawn.maps.shape[-1]),
        filters_total=drawn.filters_total,
        probe_labels=labels,
        step_unit=step_unit,
        reduction=drawn.reduction,
        normalization=drawn.normalization,
    )


def _path_argument(name: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ValueError(f"FeatureMapsCallback: {name} must be a directory path, got {value!r}.")
    path = os.fspath(value)
    if not isinstance(path, str) or "\0" in path:
        raise ValueError(f"FeatureMapsCallback: {name} must be a text path without NUL characters, got {value!r}.")
    return path


def _run_name_argument(value: Any) -> str:
    if not isinstance(value, str) or not value or "\0" in value or os.sep in value or "/" in value or value in (".", ".."):
        raise ValueError(f"FeatureMapsCallback: run_name must be a plain directory name (no '/', no NUL), got {value!r}.")
    return value


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _positive_integer(name: str, value: Any) -> int:
    if not _is_integer(value) or value < 1:
        raise ValueError(f"FeatureMapsCallback: {name} must be a positive integer, got {value!r}.")
    return int(value)


def _update_freq_argument(value: Any) -> Union[str, int]:
    if value == "batch" and isinstance(value, str):
        return 1  # Keras' alias for logging every batch
    if (isinstance(value, str) and value == "epoch") or (_is_integer(value) and value > 0):
        return value if isinstance(value, str) else int(value)
    raise ValueError(f"FeatureMapsCallback: update_freq must be 'epoch', 'batch' or a positive number of batches, got {value!r}.")


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"FeatureMapsCallback: {name} must be True or False, got {value!r}.")
    return bool(value)


def _layers_argument(value: Any) -> Optional[list]:
    if value is None:
        return None
    if isinstance(value, (str, type, re.Pattern, keras.layers.Layer)):
        return [value]
    if not isinstance(value, Iterable):
        raise ValueError(f"FeatureMapsCallback: layers must be a list of layer names, regexes, classes or layers, got {value!r}.")
    value = list(value)
    if not value:
        raise ValueError("FeatureMapsCallback: layers is empty; pass layers=None for every convolution and pooling layer, or name at least one.")
    for spec in value:
        if not isinstance(spec, (str, type, re.Pattern, keras.layers.Layer)):
            raise ValueError(
                f"FeatureMapsCallback: layers= holds {spec!r}; each entry must be a layer name or path, a compiled regex, a layer class or a layer."
            )
    return value


def _symbolic_inputs(model: keras.Model) -> Optional[list]:
    """The model's symbolic inputs, or None while it has none (unbuilt Sequential, subclassed)."""
    try:
        return list(model.inputs) or None
    except (AttributeError, ValueError):
        return None


class FeatureMapsCallback(keras.callbacks.Callback):
    """Logs activation grids of fixed probe inputs to TensorBoard while a model trains.

    At the start of training (step 0: the initial random filters) and then every
    epoch (or every ``update_freq`` batches) the probes go through the model once
    and, for each selected layer, one grid image per probe is written: every
    filter's feature map as a tile, normalised per filter. Per-filter statistics
    (min, max, mean, std, fraction of NaN/Inf), the convolution kernels, the probe
    inputs, and copies for TensorBoard's Images dashboard are written beside
    them. The Feature Maps tab of TensorBoard browses them; the format is
    described in ``docs/format.md``.

    Models: Sequential (with or without ``keras.Input``) and Functional ones,
    including layers of nested functional sub-models; subclassed models are
    refused with a ``ValueError``. A failure while writing only warns: training
    goes on. Under ``tf.distribute`` only the chief writes
    (``docs/distributed.md``).

    Example:

    ```python
    from tb_featuremaps import FeatureMapsCallback

    model.fit(
        x_train, y_train, epochs=10,
        callbacks=[
            keras.callbacks.TensorBoard("logs"),
            FeatureMapsCallback("logs"),  # writes logs/feature_maps
        ],
    )
    # then: tensorboard --logdir logs
    ```

    Args:
        log_dir: Directory (local or any path TensorBoard reads) holding the run.
        probes: Inputs to visualise: an array or tensor shaped like one batch of the
            model's input, a list (in the order of ``model.inputs``) or a dict (keyed
            by input name) with one array per input for multi-input models,
            or a ``tf.data.Dataset`` (its first batch is taken, with labels from its
            targets). Default: ten shipped MNIST digits (0..9) scaled to [0, 1],
            reshaped to the model's input when it holds 784 values.
        labels: One label per probe (shown in the panel); default: the digit class,
            the dataset's targets, or the probe index.
        layers: What to log: layer names or paths (``"backbone/conv1"``), compiled
            regexes (``re.compile("conv.*")``), layer classes or layer objects.
            Default: every convolution and (non-global) pooling layer, including
            those inside nested functional sub-models.
        update_freq: ``"epoch"`` to log at the end of every ``epoch_freq``-th epoch
            (steps count epochs), or an integer N to log every N batches (steps
            count batches).
        epoch_freq: With ``update_freq="epoch"``, log every this many epochs. The
            final state is always logged at the end of training.
        run_name: Sub-directory of ``log_dir`` written to, so the callback can share
            a ``log_dir`` with ``keras.callbacks.TensorBoard``. Several
            FeatureMapsCallbacks in one ``fit`` need distinct run names (else
            ``ValueError`` before training).
        max_filters: At most this many filters (the first ones) per layer are drawn;
            wider layers are capped and a warning says so once.
        max_tile_size: Feature maps larger than this (pixels per side) are
            block-averaged down to fit.
        write_weights: Also log the kernels of convolution layers as grids.
        write_images: Also write the grids as standard image summaries, so the stock
            Images dashboard shows them without the plugin.
    """

    def __init__(
        self,
        log_dir: Union[str, os.PathLike],
        probes: Any = None,
        labels: Optional[Sequence] = None,
        layers: Optional[Sequence[LayerSpec]] = None,
        update_freq: Union[str, int] = "epoch",
        epoch_freq: int = 1,
        run_name: str = metadata.DEFAULT_RUN_NAME,
        max_filters: int = 128,
        max_tile_size: int = 64,
        write_weights: bool = True,
        write_images: bool = True,
    ):
        super().__init__()
        self.log_dir = _path_argument("log_dir", log_dir)
        self.run_name = _run_name_argument(run_name)
        self.update_freq = _update_freq_argument(update_freq)
        self.epoch_freq = _positive_integer("epoch_freq", epoch_freq)
        self.max_filters = _positive_integer("max_filters", max_filters)
        self.max_tile_size = _positive_integer("max_tile_size", max_tile_size)
        self.write_weights = _boolean("write_weights", write_weights)
        self.write_images = _boolean("write_images", write_images)
        self.layers = _layers_argument(layers)
        if labels is not None and probes is None:
            raise ValueError(
                "FeatureMapsCallback: labels= was given without probes=; the default probes (ten MNIST digits) carry their own labels. "
                "Pass probes= together with labels=, one label per probe."
            )
        if self.update_freq != "epoch":
            self.on_train_batch_end = self._on_train_batch_end  # only then: an override turns off Keras' async batch dispatch
        self._default_probes = probes is None
        self._probes = probes_lib.prepare(probes, labels)
        self._writer: Optional[SummaryWriter] = None
        self._run_dir: Optional[str] = None  # chosen at the first epoch of a run (runs.choose_run_dir)
        self._run_number = 0  # of the run folder last used: the next new run takes a higher one
        self._run_model: Optional[keras.Model] = None  # the model of the current run
        self._extractor: Optional[Extractor] = None  # None until that model is traced
        self._infos: dict[str, metadata.LayerInfo] = {}
        self._last_step = -1  # the last step written
        self._last_tried = -1  # the last step logging was tried at (a failed step is not tried again at the end)
        self._probes_written = False
        self._position = 0
        self._epoch_start = 0
        self._fit_begins = False
        self._chief = True
        self._failures: dict[str, list[int]] = {}  # failure kind -> steps it cost (warned once per kind)

    @property
    def run_dir(self) -> str:
        """The directory this callback writes to: chosen when training starts (``docs/format.md``, "Where")."""
        return self._run_dir or os.path.join(self.log_dir, self.run_name)

    # Keras hooks ---------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._chief = is_chief()
        if not self._chief:
            return
        if self.model is not self._run_model:
            self._start_run(self.model)
        self._claim_run_name()
        if self._extractor is None:
            self._trace()
        self._fit_begins = True

    def on_epoch_begin(self, epoch, logs=None):
        if not self._chief:
            return
        if self._fit_begins:
            self._fit_begins = False
            self._begin_fit(epoch)
        self._epoch_start = self._position

    def _on_train_batch_end(self, batch, logs=None):
        """``on_train_batch_end`` when logging every N batches (set per instance in ``__init__``)."""
        if not self._chief:
            return
        previous, self._position = self._position, self._epoch_start + batch + 1  # ``batch``: the last of ``steps_per_execution``
        if self._position // self.update_freq > previous // self.update_freq:
            self._log(self._position)

    def on_epoch_end(self, epoch, logs=None):
        if not self._chief or self.update_freq != "epoch":
            return
        self._position += 1
        if self._position % self.epoch_freq == 0:
            self._log(self._position)

    def on_train_end(self, logs=None):
        if not self._chief:
            return
        if self._position > self._last_tried:
            self._log(self._position)
        if _WRITING.get(self._run_key) is self:
            del _WRITING[self._run_key]
        try:
            if self._writer is not None:
                self._writer.close()
        except Exception as error:
            warnings.warn(f"FeatureMapsCallback could not close its event file: {type(error).__name__}: {error}.", stacklevel=2)
        for kind, steps in self._failures.items():
            if len(steps) > 1:
                shown = ", ".join(map(str, steps[:10])) + (", ..." if len(steps) > 10 else "")
                warnings.warn(f"FeatureMapsCallback could not log {len(steps)} steps ({shown}) in this fit: {kind}.", stacklevel=2)
        self._failures = {}

    # Internals -----------------------------------------------------------

    def _start_run(self, model: keras.Model) -> None:
        """Starts a new run for ``model``; raises for models it cannot trace or a log_dir it cannot write."""
        if not isinstance(model, keras.Sequential) and not _symbolic_inputs(model):
            raise ValueError(
                f"FeatureMapsCallback cannot trace the {type(model).__name__} model: it has no symbolic inputs "
                "(a subclassed model). Build the network with the Sequential or Functional API, "
                "or wrap its layers in keras.Model(inputs, outputs)."
            )
        try:
            tb_tf.io.gfile.makedirs(self.log_dir)
        except Exception as error:
            raise OSError(
                f"FeatureMapsCallback cannot create its log directory {os.path.join(self.log_dir, self.run_name)!r} ({error}); "
                "pass a log_dir you can write to."
            ) from error
        if self._writer is not None:
            self._writer.close()
        self._writer = None
        self._run_dir = None
        self._run_model = model
        self._extractor = None
        self._infos = {}
        self._last_step = self._last_tried = -1
        self._probes_written = False
        self._position = 0

    @property
    def _run_key(self) -> tuple[str, str]:
        return (self.log_dir if "://" in self.log_dir else os.path.abspath(self.log_dir), self.run_name)

    def _claim_run_name(self) -> None:
        """Raises if another FeatureMapsCallback of the same ``fit`` logs to the same run name."""
        other = _WRITING.get(self._run_key)
        if other is not None and other is not self and self.params is not None and other.params is self.params:
            raise ValueError(
                f"FeatureMapsCallback: two FeatureMapsCallbacks in this fit write to {self.run_dir!r}; "
                "give each its own run_name= (for example run_name='feature_maps_conv1')."
            )
        _WRITING[self._run_key] = self

    def _open_run(self, epoch: int) -> Optional[int]:
        """Chooses the run folder at the first epoch of a run; returns the step it already holds (a resume), or None."""
        choice = runs.choose_run_dir(self.log_dir, self.run_name, resume=epoch > 0, after=self._run_number)
        if self._run_number and epoch == 0:
            warnings.warn(
                f"FeatureMapsCallback is used with a new model; it logs to {choice.run_dir!r} so the earlier run's series stay intact.",
                stacklevel=4,
            )
        elif choice.taken:
            warnings.warn(
                f"FeatureMapsCallback: {choice.taken[-1]!r} already holds another training's feature maps; this training logs to "
                f"{choice.run_dir!r} so both stay intact. To continue that run instead, resume with fit(..., initial_epoch=N); "
                "to name the run, pass run_name=.",
                stacklevel=4,
            )
        try:
            tb_tf.io.gfile.makedirs(choice.run_dir)
        except Exception as error:
            raise OSError(
                f"FeatureMapsCallback cannot create its log directory {choice.run_dir!r} ({error}); pass a log_dir you can write to."
            ) from error
        self._run_dir = choice.run_dir
        self._run_number = choice.number
        self._writer = SummaryWriter(choice.run_dir)
        return choice.last_step

    def _begin_fit(self, epoch: int) -> None:
        """Places the step counter at the first epoch of a ``fit`` and logs the state training starts from."""
        logged = self._open_run(epoch) if self._run_dir is None else None
        steps_per_epoch = (self.params or {}).get("steps") or 0
        start = epoch if self.update_freq == "epoch" else epoch * steps_per_epoch
        if logged is not None:  # a resume: continue after what the folder holds
            self._last_step = self._last_tried = logged
            start = start if steps_per_epoch or self.update_freq == "epoch" else logged
        self._position = max(start, self._position)
        if self._position > self._last_step:
            self._log(self._position)

    def _trace(self) -> None:
        """Builds the extractor for the run's model."""
        model = self._run_model
        if isinstance(model, keras.Sequential) and not model.built:
            # Keras builds a Sequential model without an Input only when it traces the first batch;
            # build it now, from the probes' shape, so that step 0 shows the initial state.
            # The default digits build it for 28x28x1 images.
            shape = self._probes.inputs[0].shape[1:]
            model.build((None, *shape, 1) if self._default_probes else (None, *shape))
        inputs = _symbolic_inputs(model)
        if not inputs:
            raise ValueError(
                f"FeatureMapsCallback cannot trace the {type(model).__name__} model: building it for the probes' shape gave it no "
                "symbolic inputs; start it with keras.Input(shape)."
            )
        shapes = [tuple(tensor.shape) for tensor in inputs]
        names = [tensor.name for tensor in inputs]
        self._probes = probes_lib.fit_to_model(self._probes, shapes, self._default_probes, names)
        selected = select_layers(model, self.layers)
        self._extractor = Extractor(model, selected)
        capped = [f"{item.path} ({self._filters(item)})" for item, _ in selected if self._filters(item) > self.max_filters]
        if capped:
            warnings.warn(
                f"FeatureMapsCallback draws the first {self.max_filters} filters of: {', '.join(capped)}; raise max_filters= to draw more.",
                stacklevel=3,
            )

    def _filters(self, item: SelectedLayer) -> int:
        shape = item.output_shape
        return int(shape[1] if item.channels_first and len(shape) >= 3 else shape[-1])

    def _info(self, kind: str, item: SelectedLayer, drawn: grid.DrawnLayer, labels: list) -> metadata.LayerInfo:
        key = metadata.tag_for(kind, item.path)
        if key not in self._infos:
            step_unit = "epoch" if self.update_freq == "epoch" else "batch"
            self._infos[key] = layer_info(kind, item, drawn, labels, step_unit)
        return self._infos[key]

    def _log(self, step: int) -> None:
        """Writes every selected layer at ``step``; a failure warns (once per kind of failure) and training goes on."""
        self._last_tried = step
        try:
            with np.errstate(all="ignore"):  # exploding or NaN activations are what the logs are for
                self._write(step)
        except Exception as error:  # the user's training matters more than one log event
            if self._writer is not None:
                self._writer.discard()  # a step is written whole or not at all
            kind = f"{type(error).__name__}: {error}"
            if kind not in self._failures:
                warnings.warn(
                    f"FeatureMapsCallback could not log step {step}: {kind}. Training goes on; "
                    "later steps that fail the same way are counted at the end of the fit.",
                    stacklevel=2,
                )
            self._failures.setdefault(kind, []).append(step)
            return
        self._last_step = step

    def _write(self, step: int) -> None:
        _ = self.model  # the JAX backend syncs its training state into the layers only when this is read
        if not self._probes_written:
            self._write_probes(step)
        outputs = self._extractor(self._probes.inputs)
        for item in self._extractor.layers:
            self._write_maps(step, metadata.KIND_ACTIVATIONS, item, outputs[item.path], self._probes.labels)
            if self.write_weights:
                kernel = kernel_maps(item.layer)
                if kernel is not None:
                    self._write_maps(step, metadata.KIND_WEIGHTS, item, kernel, ["kernel"], channels_first=False)
        self._writer.flush()
        self._probes_written = True

    def _write_maps(self, step: int, kind: str, item: SelectedLayer, values: np.ndarray, labels: list, channels_first: Optional[bool] = None) -> None:
        channels_first = item.channels_first if channels_first is None else channels_first
        drawn = grid.draw(values, channels_first, self.max_filters, self.max_tile_size)
        info = self._info(kind, item, drawn, labels)
        activations = kind == metadata.KIND_ACTIVATIONS
        self._writer.write_layer(
            step,
            info,
            grid.render(drawn, info.layout),
            stats=drawn.stats if activations else None,
            images_copy=self.write_images,
            health=grid.filter_health(drawn.stats) if activations else None,
        )

    def _write_probes(self, step: int) -> None:
        first = self._probes.inputs[0]
        formats = [item.channels_first for item in self._extractor.layers if hasattr(item.layer, "data_format")]
        channels_first = formats[0] if formats else keras.config.image_data_format() == "channels_first"
        pictures = [probes_lib.probe_image(example, channels_first) for example in first]
        pngs = [grid.encode_png(picture) for picture in pictures]
        height, width = pictures[0].shape[:2]
        self._writer.write_probes(step, pngs, width, height, self._probes.labels, list(first.shape[1:]))
