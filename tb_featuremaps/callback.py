"""``FeatureMapsCallback``: logs what a convolutional network sees while it trains."""

from __future__ import annotations

import json
import os
import warnings
import weakref
from collections.abc import Sequence
from typing import Any, Optional, Union

import keras
import numpy as np
from tensorboard.compat import tf as tb_tf

from . import grid, metadata
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


def layer_info(kind: str, item: SelectedLayer, maps: np.ndarray, total: int, reduction: str, labels: list, step_unit: str) -> metadata.LayerInfo:
    """The constant description of ``item``'s ``kind`` series, laid out for ``maps`` ``[P, h, w, F]`` as drawn."""
    return metadata.LayerInfo(
        kind=kind,
        layer=item.path,
        layer_class=type(item.layer).__name__,
        index=item.index,
        output_shape=item.output_shape,
        layout=metadata.GridLayout.for_tiles(maps.shape[-1], maps.shape[1], maps.shape[2]),
        filters_shown=int(maps.shape[-1]),
        filters_total=total,
        probe_labels=labels,
        step_unit=step_unit,
        reduction=reduction,
    )


def _symbolic_inputs(model: keras.Model) -> Optional[list]:
    """The model's symbolic inputs, or None while it has none (unbuilt Sequential, subclassed)."""
    try:
        return list(model.inputs) or None
    except (AttributeError, ValueError):
        return None


def _run_key(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


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
        if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir):
            raise ValueError(f"FeatureMapsCallback: log_dir must be a directory path, got {log_dir!r}.")
        if update_freq != "epoch" and not (isinstance(update_freq, int) and not isinstance(update_freq, bool) and update_freq > 0):
            raise ValueError(f"FeatureMapsCallback: update_freq must be 'epoch' or a positive number of batches, got {update_freq!r}.")
        for name, value in (("epoch_freq", epoch_freq), ("max_filters", max_filters), ("max_tile_size", max_tile_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"FeatureMapsCallback: {name} must be a positive integer, got {value!r}.")
        if not isinstance(run_name, str) or not run_name or os.sep in run_name or run_name in (".", ".."):
            raise ValueError(f"FeatureMapsCallback: run_name must be a plain directory name, got {run_name!r}.")
        if isinstance(layers, (str, type)) or isinstance(layers, keras.layers.Layer):
            layers = [layers]
        self.log_dir = os.fspath(log_dir)
        self.run_name = run_name
        self.layers = None if layers is None else list(layers)
        self.update_freq = update_freq
        self.epoch_freq = epoch_freq
        self.max_filters = max_filters
        self.max_tile_size = max_tile_size
        self.write_weights = write_weights
        self.write_images = write_images
        self._default_probes = probes is None
        self._probes = probes_lib.prepare(probes, labels)
        self._writer: Optional[SummaryWriter] = None
        self._runs_started = 0
        self._run_model: Optional[keras.Model] = None  # the model of the current run
        self._extractor: Optional[Extractor] = None  # None until that model is traced
        self._infos: dict[str, metadata.LayerInfo] = {}
        self._last_step = -1
        self._position = 0
        self._epoch_start = 0
        self._fit_begins = False
        self._chief = True

    @property
    def run_dir(self) -> str:
        """The directory this callback writes to (a new one per model it is used with)."""
        suffix = f"_{self._runs_started}" if self._runs_started > 1 else ""
        return os.path.join(self.log_dir, self.run_name + suffix)

    # Keras hooks ---------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._chief = is_chief()
        if not self._chief:
            return
        if self.model is not self._run_model:
            self._start_run(self.model)
        self._claim_run_dir()
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

    def on_train_batch_end(self, batch, logs=None):
        if not self._chief or self.update_freq == "epoch":
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
        if self._position > self._last_step:
            self._log(self._position)
        if _WRITING.get(_run_key(self.run_dir)) is self:
            del _WRITING[_run_key(self.run_dir)]
        try:
            self._writer.close()
        except Exception as error:
            warnings.warn(f"FeatureMapsCallback could not close its event file: {type(error).__name__}: {error}.", stacklevel=2)

    # Internals -----------------------------------------------------------

    def _start_run(self, model: keras.Model) -> None:
        """Starts a new run directory for ``model``; raises for models it cannot trace."""
        if not isinstance(model, keras.Sequential) and not _symbolic_inputs(model):
            raise ValueError(
                f"FeatureMapsCallback cannot trace the {type(model).__name__} model: it has no symbolic inputs "
                "(a subclassed model). Build the network with the Sequential or Functional API, "
                "or wrap its layers in keras.Model(inputs, outputs)."
            )
        if self._writer is not None:
            self._writer.close()
        self._runs_started += 1
        if self._runs_started > 1:
            warnings.warn(
                f"FeatureMapsCallback is used with a new model; it logs to {self.run_dir!r} so the earlier run's series stay intact.",
                stacklevel=3,
            )
        try:
            tb_tf.io.gfile.makedirs(self.run_dir)
        except Exception as error:
            raise OSError(
                f"FeatureMapsCallback cannot create its log directory {self.run_dir!r} ({error}); pass a log_dir you can write to."
            ) from error
        self._writer = SummaryWriter(self.run_dir)
        self._run_model = model
        self._extractor = None
        self._infos = {}
        self._last_step = -1
        self._position = 0

    def _claim_run_dir(self) -> None:
        """Raises if another FeatureMapsCallback of the same ``fit`` writes to this run directory."""
        key = _run_key(self.run_dir)
        other = _WRITING.get(key)
        if other is not None and other is not self and self.params is not None and other.params is self.params:
            raise ValueError(
                f"FeatureMapsCallback: two FeatureMapsCallbacks in this fit write to {self.run_dir!r}; "
                "give each its own run_name= (for example run_name='feature_maps_conv1')."
            )
        _WRITING[key] = self

    def _begin_fit(self, epoch: int) -> None:
        """Places the step counter at the first epoch of a ``fit`` and logs the state training starts from."""
        resumed = self._last_step < 0 and epoch > 0  # an earlier process logged this state
        if self.update_freq == "epoch":
            self._position = max(epoch, self._position)
        else:
            steps_per_epoch = (self.params or {}).get("steps") or 0
            self._position = max(epoch * steps_per_epoch, self._position)
        if not resumed and self._position > self._last_step:
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

    def _info(self, kind: str, item: SelectedLayer, maps: np.ndarray, total: int, reduction: str, labels: list) -> metadata.LayerInfo:
        key = metadata.tag_for(kind, item.path)
        if key not in self._infos:
            step_unit = "epoch" if self.update_freq == "epoch" else "batch"
            self._infos[key] = layer_info(kind, item, maps, total, reduction, labels, step_unit)
        return self._infos[key]

    def _log(self, step: int) -> None:
        """Writes every selected layer at ``step``; a failure warns and training goes on."""
        try:
            with np.errstate(all="ignore"):  # exploding or NaN activations are what the logs are for
                self._write(step)
        except Exception as error:  # the user's training matters more than one log event
            warnings.warn(f"FeatureMapsCallback could not log step {step}: {type(error).__name__}: {error}. Training goes on.", stacklevel=2)
        self._last_step = step

    def _write(self, step: int) -> None:
        if self._last_step < 0:
            self._write_probes(step)
        outputs = self._extractor(self._probes.inputs)
        for item in self._extractor.layers:
            self._write_maps(step, metadata.KIND_ACTIVATIONS, item, outputs[item.path], self._probes.labels)
            if self.write_weights:
                kernel = kernel_maps(item.layer)
                if kernel is not None:
                    self._write_maps(step, metadata.KIND_WEIGHTS, item, kernel, ["kernel"], channels_first=False)
        self._writer.flush()

    def _write_maps(self, step, kind, item, values, labels, channels_first=None) -> None:
        channels_first = item.channels_first if channels_first is None else channels_first
        maps, reduction = grid.to_maps(values, channels_first)
        total = maps.shape[-1]
        maps = maps[..., : self.max_filters]
        stats = grid.filter_stats(maps)
        small, factors = grid.downsample(maps, self.max_tile_size)
        if factors != (1, 1):
            reduction = f"{reduction}; block mean {factors[0]}x{factors[1]}" if reduction != "none" else f"block mean {factors[0]}x{factors[1]}"
        info = self._info(kind, item, small, total, reduction, labels)
        pngs = grid.render(small, info.layout, stats if factors == (1, 1) else None)
        activations = kind == metadata.KIND_ACTIVATIONS
        self._writer.write_layer(
            step,
            info,
            pngs,
            stats=stats if activations else None,
            images_copy=self.write_images,
            health=grid.filter_health(stats) if activations else None,
        )

    def _write_probes(self, step: int) -> None:
        first = self._probes.inputs[0]
        formats = [item.channels_first for item in self._extractor.layers if hasattr(item.layer, "data_format")]
        channels_first = formats[0] if formats else keras.config.image_data_format() == "channels_first"
        pictures = [probes_lib.probe_image(example, channels_first) for example in first]
        pngs = [grid.encode_png(picture) for picture in pictures]
        height, width = pictures[0].shape[:2]
        self._writer.write_probes(step, pngs, width, height, self._probes.labels, list(first.shape[1:]))
