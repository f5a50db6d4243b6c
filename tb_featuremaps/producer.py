"""``Producer``: what every framework's logger shares; a framework adds only how to select layers and run its model.

A producer runs fixed probes through a model at a step and hands each logged
layer's output, as host NumPy, to :class:`~tb_featuremaps.FeatureMapsWriter`.
This base holds every part of that which is not the framework's: the options
(:class:`~tb_featuremaps.writer.options.Options`, checked once), the writer,
the chief rule (``distributed.py``), tracing once, ``log(step)`` (probes, pool
responses, kernels, then the writer; a failure warns and training goes on), the
filter-cap warning and ``close``. A framework's producer implements three hooks:

- :meth:`Producer._select`: which layers, with a :class:`LayerDescription` each
  (and, when selecting ran the probes, their outputs, which the first log writes);
- :meth:`Producer._forward`: the probes (or a batch of the pool) through the model,
  the outputs as float32 NumPy by layer path;
- :meth:`Producer._kernel`: a layer's kernel, or None.

A producer for a model that is a plain Python function returning a dict of
arrays (``tests/test_producer.py`` holds it, 20 lines):

```python
class FunctionProducer(Producer):
    def __init__(self, function, log_dir, **given):
        super().__init__(log_dir, Options(**given, owner="FunctionProducer"))
        self._set_model(function)

    def _select(self, timer):
        outputs = self._forward(None, [])
        return Traced({path: LayerDescription("function", False, [None, *out.shape[1:]]) for path, out in outputs.items()}, outputs)

    def _forward(self, inputs, paths):
        arrays = self.writer.probes.inputs if inputs is None else inputs
        return {path: np.asarray(out, np.float32) for path, out in self.model(*arrays).items()}

    def _kernel(self, path):
        return None
```
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

from . import distributed
from .render import strongest
from .warning import warn
from .writer import FeatureMapsWriter, LayerDescription, StageTimer, arguments, timed
from .writer import probes as probes_lib
from .writer.options import Options


@dataclass
class Traced:
    """What selecting the layers found: each logged layer's description, and the probes' outputs if it ran them."""

    descriptions: dict[str, LayerDescription]
    """The logged layers by path (their tags), in model order."""
    outputs: Optional[dict[str, np.ndarray]] = None
    """The probes' outputs by path when selecting ran them (the first log writes them), else None."""


def filters(description: LayerDescription) -> int:
    """How many filters a layer's output has: its channel axis (axis 1 channels-first, else the last)."""
    shape = description.output_shape
    return int(shape[1] if description.channels_first and len(shape) >= 3 else shape[-1])


class Producer:
    """The framework-free part of a logger of feature maps (see the module's docstring for the three hooks).

    Args:
        log_dir: Directory TensorBoard reads; the run is ``log_dir/run_name``.
        options: The options, checked (:class:`~tb_featuremaps.writer.options.Options`);
            ``options.owner`` is the class error messages name.
        probes_channels_first: Whether the probes are channels-first (for their pictures),
            when the framework knows it before tracing.
    """

    MODEL = "model"
    """What the framework calls what is logged, in messages (``set_<MODEL>()`` gives it)."""
    LAYER_TYPE: type = object
    """The layer objects ``layers=`` may hold (besides names, regexes and classes)."""
    LAYER_ENTRY = "layer name"
    """What a name in ``layers=`` is, in messages."""

    def __init__(self, log_dir: Union[str, os.PathLike], options: Options, probes_channels_first: bool = False):
        owner = options.owner
        self.options = options
        self.layers = arguments.layer_specs(owner, options.layers, self.LAYER_TYPE, self.LAYER_ENTRY)
        self._owner = owner
        self._default_probes = options.probes is None
        probes = probes_lib.prepare(options.probes, options.labels, owner)
        self.writer = FeatureMapsWriter(
            log_dir,
            self._default_layout(probes) if self._default_probes else probes,
            probes_channels_first=probes_channels_first,
            owner=owner,
            **options.writer_keywords(),
        )
        self.model: Any = None
        self._descriptions: Optional[dict[str, LayerDescription]] = None  # None until traced

    @property
    def all_ranks(self) -> bool:
        """Whether every process of a distributed training logs (else only the chief)."""
        return self.options.all_ranks

    @property
    def write_weights(self) -> bool:
        """Whether kernels are logged."""
        return self.options.write_weights

    @property
    def run_dir(self) -> str:
        """The run folder (chosen at the first write; ``docs/format.md``, "Where")."""
        return self.writer.run_dir

    @property
    def writes(self) -> bool:
        """Whether this process logs: the chief of a distributed training (``docs/distributed.md``), or any with ``all_ranks=True``."""
        return self.all_ranks or distributed.is_chief()

    @property
    def layer_paths(self) -> list[str]:
        """The paths of the logged layers (their tags), in model order; traces the model if needed."""
        self.trace()
        return list(self._descriptions)

    def _set_model(self, model: Any) -> None:
        """Logs ``model`` from now on (traced again); a model after another one starts a new run folder."""
        if self.model is not None and model is not self.model:
            self.writer.new_run()
        self.model, self._descriptions = model, None

    # Tracing ----------------------------------------------------------------

    def trace(self) -> None:
        """Selects the layers (done by the first :meth:`log`); raises ``ValueError`` for what cannot be logged."""
        self._trace(None)

    def _trace(self, timer: Optional[StageTimer]) -> Optional[dict[str, np.ndarray]]:
        """Selects the layers once: None when already traced, else the probes' outputs if selecting ran them."""
        if self._descriptions is not None:
            return None
        if self.model is None:
            raise ValueError(f"{self._owner} has no {self.MODEL} to log; pass one to the constructor or to set_{self.MODEL}().")
        traced = self._select(timer)
        max_filters = self.writer.max_filters
        capped = [f"{path} ({filters(item)})" for path, item in traced.descriptions.items() if filters(item) > max_filters]
        if capped:
            warn(f"{self._owner} draws the first {max_filters} filters of: {', '.join(capped)}; raise max_filters= to draw more.")
        self._descriptions = traced.descriptions
        return traced.outputs

    # Logging ----------------------------------------------------------------

    def log(self, step: int) -> bool:
        """Logs the selected layers at ``step`` (growing): runs the probes, queues the rest; returns whether it was accepted.

        On a process that does not write (:attr:`writes`) it does nothing and returns False.
        """
        if not self.writes:
            return False
        timer = self.options.timer
        first = self._trace(timer)
        try:
            outputs = first if first is not None else timed(timer, "forward", self._forward, None, list(self._descriptions))
            pool = timed(timer, "forward", self._pool_responses) if self.writer.pool is not None else {}
            kernels = timed(timer, "kernels", self._kernels) if self.write_weights else {}
        except Exception as error:  # a training loop matters more than one log event
            self.writer.report_failure(step, error)
            return False
        return self.writer.write(step, outputs, kernels, self._descriptions, pool)

    def _pool_responses(self) -> dict[str, strongest.Responses]:
        """Each spatial layer's filter maxima for every pool input, the pool run in batches."""
        layouts = {path: item.channels_first for path, item in self._descriptions.items() if len(item.output_shape) in (3, 4)}
        paths = list(layouts)
        return strongest.pool_responses(lambda arrays: self._forward(arrays, paths), self.writer.pool.inputs, layouts, self.writer.max_filters)

    def _kernels(self) -> dict[str, np.ndarray]:
        found = {path: self._kernel(path) for path in self._descriptions}
        return {path: kernel for path, kernel in found.items() if kernel is not None}

    def close(self) -> None:
        """Closes the event file (a later :meth:`log` opens a new one) and reports the steps failures cost."""
        self.writer.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # The framework's hooks ------------------------------------------------------

    def _default_layout(self, digits: probes_lib.Probes) -> probes_lib.Probes:
        """The default probes (ten digits ``[10, 28, 28]``) laid out for the framework; as they are by default."""
        return digits

    def _select(self, timer: Optional[StageTimer]) -> Traced:
        """The layers to log (``self.layers`` says which); raises ``ValueError`` naming what cannot be logged."""
        raise NotImplementedError

    def _forward(self, inputs: Optional[list], paths: list[str]) -> dict[str, np.ndarray]:
        """The probes (``inputs`` None) or a batch of the pool (one array per model input) through the model: at least the
        layers in ``paths``, each as float32 NumPy on the host (a copy the model cannot change)."""
        raise NotImplementedError

    def _kernel(self, path: str) -> Optional[np.ndarray]:
        """The layer's kernel as ``[*spatial, in, out]``, or None."""
        raise NotImplementedError
