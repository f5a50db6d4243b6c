"""``FeatureMapsCallback``: logs what a convolutional network sees while it trains, from ``fit``'s hooks."""

from __future__ import annotations

import dataclasses
import os
import weakref
from typing import Any, Optional, Union

import keras

from ..distributed import is_chief
from ..writer import arguments
from ..writer import options as options_lib
from .logger import FeatureMapsLogger

_WRITING: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
"""(log_dir, run_name) -> the callback logging there during a ``fit`` (to catch two in one ``fit``)."""

_OWNER = "FeatureMapsCallback"


def _update_freq_argument(value: Any) -> Union[str, int]:
    if isinstance(value, str) and value in ("epoch", "batch"):
        return value if value == "epoch" else 1  # "batch": Keras' alias for every batch
    if isinstance(value, str):
        raise ValueError(f"{_OWNER}: update_freq must be 'epoch', 'batch' or a positive number of batches, got {value!r}.")
    try:
        return arguments.positive_integer(_OWNER, "update_freq", value)
    except ValueError:
        raise ValueError(f"{_OWNER}: update_freq must be 'epoch', 'batch' or a positive number of batches, got {value!r}.") from None


@options_lib.takes(exclude=("step_unit", "resume", "timer", "background"))  # a step counts epochs or batches; fit says when it resumes
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

    It is a :class:`FeatureMapsLogger` driven by ``fit``'s hooks: the logger
    does the same from a custom loop. Models: Sequential (with or without
    ``keras.Input``) and Functional ones,
    including layers of nested functional sub-models; subclassed models are
    refused with a ``ValueError``. A failure while writing only warns: training
    goes on. In a distributed training only the chief writes
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
            those inside nested functional sub-models; for a deep model (more than
            20 of them: ResNet, MobileNet, EfficientNet, ConvNeXt) only the first
            convolution and the last layer of each resolution stage, with a warning
            naming them. ``layers="all"`` logs every one.
        update_freq: ``"epoch"`` to log at the end of every ``epoch_freq``-th epoch
            (steps count epochs), or an integer N to log every N batches (steps
            count batches; ``"batch"`` is N = 1).
        epoch_freq: With ``update_freq="epoch"``, log every this many epochs. The
            final state is always logged at the end of training.
        run_name: Several FeatureMapsCallbacks in one ``fit`` need distinct run names
            (else ``ValueError`` before training); a run name of its own lets the
            callback share a ``log_dir`` with ``keras.callbacks.TensorBoard``.
        pool: The patches follow each layer's receptive field (the panel's "Looks for"
            view and "still changing" summary).
        options: An :class:`~tb_featuremaps.Options` holding options at once.
    """

    def __init__(
        self,
        log_dir: Union[str, os.PathLike],
        probes: Any = None,
        labels: Any = None,
        layers: Any = None,
        update_freq: Union[str, int] = "epoch",
        epoch_freq: int = 1,
        *,
        options: Optional[options_lib.Options] = None,
        **given: Any,
    ):
        super().__init__()
        options = options_lib.collect(type(self), _OWNER, options, given, probes=probes, labels=labels, layers=layers)
        self.all_ranks = options.all_ranks
        self.update_freq = _update_freq_argument(update_freq)
        self.epoch_freq = arguments.positive_integer(_OWNER, "epoch_freq", epoch_freq)
        step_unit = "epoch" if self.update_freq == "epoch" else "batch"
        self.logger = FeatureMapsLogger(None, log_dir, options=dataclasses.replace(options, step_unit=step_unit, all_ranks=True), owner=_OWNER)
        # all_ranks=True: this callback decides who logs, when training starts
        self.log_dir, self.run_name = self.logger.writer.log_dir, self.logger.writer.run_name
        if self.update_freq != "epoch":
            self.on_train_batch_end = self._on_train_batch_end  # only then: an override turns off Keras' async batch dispatch
        self._last_step = -1  # the last step written
        self._last_tried = -1  # the last step logging was tried at (a failed step is not tried again at the end)
        self._position = 0
        self._epoch_start = 0
        self._fit_begins = False
        self._chief = True

    @property
    def run_dir(self) -> str:
        """The directory this callback writes to: chosen when training starts (``docs/format.md``, "Where")."""
        return self.logger.writer.run_dir

    # Keras hooks ---------------------------------------------------------

    def on_train_begin(self, logs=None):
        self._chief = self.all_ranks or is_chief()
        if not self._chief:
            return
        if self.model is not self.logger.model:
            self.logger.set_model(self.model)
            self._last_step = self._last_tried = -1
            self._position = 0
        self._claim_run_name()
        self.logger.trace()  # misconfiguration raises here, before the first batch
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
        self.logger.close()

    # Internals -----------------------------------------------------------

    @property
    def _run_key(self) -> tuple[str, str]:
        return (self.log_dir if "://" in self.log_dir else os.path.abspath(self.log_dir), self.run_name)

    def _claim_run_name(self) -> None:
        """Raises if another FeatureMapsCallback of the same ``fit`` logs to the same run name."""
        other = _WRITING.get(self._run_key)
        if other is not None and other is not self and self.params is not None and other.params is self.params:
            raise ValueError(
                f"{_OWNER}: two FeatureMapsCallbacks in this fit write to {self.run_dir!r}; "
                "give each its own run_name= (for example run_name='feature_maps_conv1')."
            )
        _WRITING[self._run_key] = self

    def _begin_fit(self, epoch: int) -> None:
        """Places the step counter at the first epoch of a ``fit`` and logs the state training starts from."""
        writer = self.logger.writer
        if self._last_step < 0:  # the run's first fit: a resume continues the newest run (docs/format.md, "Where")
            writer.resume = epoch > 0
        logged = writer.last_step  # chooses the run folder
        steps_per_epoch = (self.params or {}).get("steps") or 0
        start = epoch if self.update_freq == "epoch" else epoch * steps_per_epoch
        if logged is not None and self._last_step < 0:  # a resume: continue after what the folder holds
            self._last_step = self._last_tried = logged
            start = start if steps_per_epoch or self.update_freq == "epoch" else logged
        self._position = max(start, self._position)
        if self._position > self._last_step:
            self._log(self._position)

    def _log(self, step: int) -> None:
        """Logs ``step`` unless the run already holds it; a failure warns (once per kind) and training goes on."""
        self._last_tried = step
        last = self.logger.writer.last_step
        if last is not None and step <= last:
            return  # resumed from an earlier checkpoint than the run's last step: those steps stay as logged
        _ = self.model  # the JAX backend syncs its training state into the layers only when this is read
        if self.logger.log(step):
            self._last_step = step
