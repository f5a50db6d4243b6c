"""``FeatureMapsCallback`` for PyTorch Lightning: the PyTorch ``FeatureMapsLogger`` driven by ``Trainer.fit``'s hooks.

Importing this module imports ``pytorch_lightning`` (or, where only the
``lightning`` package is installed or already imported, ``lightning.pytorch``).

```python
from tb_featuremaps.lightning import FeatureMapsCallback

trainer = Trainer(max_epochs=10, callbacks=[FeatureMapsCallback(probes=x_val[:8])])
trainer.fit(model, loader)  # writes <the TensorBoardLogger's version folder>/feature_maps
```
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from typing import Any, Optional, Union

from .torch import FeatureMapsLogger
from .writer import arguments
from .writer import options as options_lib


def _lightning() -> Any:
    """``lightning.pytorch`` if the process already uses it, else ``pytorch_lightning``, else ``lightning.pytorch``."""
    names = ["pytorch_lightning", "lightning.pytorch"]
    if "lightning.pytorch" in sys.modules:
        names.reverse()
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError("tb_featuremaps.lightning needs PyTorch Lightning: pip install pytorch-lightning (or lightning).")


pl = _lightning()

_OWNER = "FeatureMapsCallback"


def default_log_dir(trainer: Any) -> str:
    """The first ``TensorBoardLogger``'s version folder (``save_dir/name/version_N``), else ``trainer.default_root_dir``.

    Unlike ``trainer.log_dir`` it broadcasts nothing, so one process may ask alone.
    """
    for logger in trainer.loggers:
        if isinstance(logger, pl.loggers.TensorBoardLogger):
            return logger.log_dir
    return trainer.default_root_dir


@options_lib.takes(exclude=("resume",))  # a resume follows the checkpoint
class FeatureMapsCallback(pl.Callback):
    """Logs a ``LightningModule``'s feature maps for fixed probes while ``Trainer.fit`` trains it.

    The state training starts from is logged when training starts (step 0, or
    the restored ``global_step`` when resuming from a checkpoint), then at the end
    of every ``every_n_epochs``-th epoch, or every ``every_n_steps`` optimizer
    steps; the final state at the end of training. Steps are
    ``trainer.global_step``, as the trainer's own loggers count them (with
    ``accumulate_grad_batches=k``, one step per k batches). Only the global
    zero process runs the probes and writes, unless ``all_ranks=True``. Under
    ``fast_dev_run`` it writes nothing, as Lightning's loggers: the probes still
    go through the module once, so misconfiguration raises there.

    Args:
        log_dir: Where the run folder goes; default: the version folder of the
            trainer's first ``TensorBoardLogger`` (so the run is
            ``lightning_logs/version_0/feature_maps``, beside the scalars), else
            the trainer's ``default_root_dir``.
        probes, labels, layers: as for the PyTorch ``FeatureMapsLogger``.
        every_n_steps: Log every this many optimizer steps instead of every epoch.
        every_n_epochs: Without ``every_n_steps``, log every this many epochs.
        all_ranks: Log on every process (give each its own ``run_name``); default:
            the global zero process only.
        options: An :class:`~tb_featuremaps.Options` holding options at once.
    """

    def __init__(
        self,
        log_dir: Optional[Union[str, os.PathLike]] = None,
        probes: Any = None,
        labels: Any = None,
        layers: Any = None,
        *,
        every_n_steps: Optional[int] = None,
        every_n_epochs: int = 1,
        options: Optional[options_lib.Options] = None,
        **given: Any,
    ):
        super().__init__()
        options = options_lib.collect(type(self), _OWNER, options, given, probes=probes, labels=labels, layers=layers)
        self.every_n_steps = None if every_n_steps is None else arguments.positive_integer(_OWNER, "every_n_steps", every_n_steps)
        self.every_n_epochs = arguments.positive_integer(_OWNER, "every_n_epochs", every_n_epochs)
        self.all_ranks = options.all_ranks
        self._default_dir = log_dir is None
        # The logger is built now, so that bad arguments raise here; the module and (by default) the folder come at fit.
        # all_ranks=True: this callback decides who logs, at setup.
        log_dir = os.curdir if log_dir is None else log_dir
        self.logger = FeatureMapsLogger(None, log_dir, options=dataclasses.replace(options, all_ranks=True), owner=_OWNER)
        self._writes = False
        self._last_tried = -1  # the last step logging was tried at
        self._fitted = False  # whether an earlier fit logged (a later one continues the run)

    @property
    def run_dir(self) -> str:
        """The run folder (chosen when training starts; ``docs/format.md``, "Where")."""
        return self.logger.run_dir

    # Lightning hooks -----------------------------------------------------

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage != "fit":
            return
        self.logger.set_module(pl_module)  # every process: an unknown layer name raises on each, none waits for another
        self._writes = self.all_ranks or trainer.is_global_zero
        if self._writes and self._default_dir and not self._fitted:
            self.logger.writer.log_dir = arguments.path(_OWNER, "log_dir", default_log_dir(trainer))

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not self._writes:
            return
        if trainer.fast_dev_run:
            self.logger.trace()  # checks probes and layers; writes nothing, as Lightning's loggers under fast_dev_run
            return
        writer = self.logger.writer
        if not self._fitted:  # a resumed fit continues the newest run there (docs/format.md, "Where")
            writer.resume = trainer.global_step > 0
        self._fitted = True
        self.logger.trace()  # misconfiguration raises here, before the first batch
        self._log(trainer.global_step)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not self._active(trainer) or self.every_n_steps is None:
            return
        step = trainer.global_step  # counts optimizer steps: unchanged on the batches gradient accumulation gathers
        if step > self._last_tried and step % self.every_n_steps == 0:
            self._log(step)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self._active(trainer) and self.every_n_steps is None and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._log(trainer.global_step)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._active(trainer):
            return
        if trainer.global_step > self._last_tried:
            self._log(trainer.global_step)
        self.logger.close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self._writes:
            self.logger.close()  # what was logged stays readable

    # Internals -----------------------------------------------------------

    def _active(self, trainer: Any) -> bool:
        return self._writes and not trainer.fast_dev_run

    def _log(self, step: int) -> None:
        """Logs ``step`` unless the run already holds it (resumed from an earlier checkpoint); a failure only warns."""
        self._last_tried = step
        last = self.logger.writer.last_step
        if last is None or step > last:
            self.logger.log(step)
