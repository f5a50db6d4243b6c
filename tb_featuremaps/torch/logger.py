"""``FeatureMapsLogger`` for PyTorch: logs an ``nn.Module``'s feature maps from any training loop, one line per step."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn

from ..producer import Producer, Traced
from ..warning import warn
from ..writer import LayerDescription, StageTimer, arguments, timed
from ..writer import options as options_lib
from ..writer import probes as probes_lib

CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
TRANSPOSED_CONVOLUTIONS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
POOLING = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
SPATIAL_MODULE_TYPES = CONVOLUTIONS + TRANSPOSED_CONVOLUTIONS + POOLING
"""Modules logged by default: convolutions (``Lazy`` ones too) and non-adaptive pooling."""

NO_FIELD = "receptive fields are not computed for PyTorch modules"
"""Why a PyTorch module's strongest inputs are shown whole."""

ModuleSpec = Union[str, "re.Pattern[str]", type, nn.Module]


def unwrap(module: nn.Module) -> nn.Module:
    """The module a ``torch.compile``, ``DataParallel`` or ``DistributedDataParallel`` wrapper holds (names without their prefix)."""
    while True:
        if isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            module = module.module
        elif isinstance(getattr(module, "_orig_mod", None), nn.Module):  # torch.compile's OptimizedModule
            module = module._orig_mod
        else:
            return module


def _matches(spec: ModuleSpec, path: str, module: nn.Module) -> bool:
    if isinstance(spec, str):
        return spec == path
    if isinstance(spec, re.Pattern):
        return spec.fullmatch(path) is not None
    if isinstance(spec, type):
        return isinstance(module, spec)
    return spec is module


def select_modules(owner: str, root: nn.Module, layers: Optional[Sequence[ModuleSpec]]) -> list[tuple[str, nn.Module]]:
    """The (qualified name, module) pairs to log, in ``named_modules`` order; raises ``ValueError`` for a spec that matches none."""
    found = [(path, module) for path, module in root.named_modules() if path]  # the root has no name to tag it with
    available = ", ".join(f"{path} ({type(module).__name__})" for path, module in found) or "none"
    if layers is None:
        chosen = [(path, module) for path, module in found if isinstance(module, SPATIAL_MODULE_TYPES)]
        if not chosen:
            raise ValueError(
                f"{owner} found no convolution or pooling module in the {type(root).__name__} (modules: {available}); "
                "pass layers=[...] with the qualified names of the modules to log."
            )
        return chosen
    for spec in layers:
        if spec is root:
            raise ValueError(f"{owner}: layers= holds the logged module itself; its output is what forward returns. Name its submodules.")
        if not any(_matches(spec, path, module) for path, module in found):
            raise ValueError(
                f"{owner}: layers= names {arguments.describe_spec(spec)}, which is not a submodule of the {type(root).__name__}. "
                f"Available modules: {available}."
            )
    return [(path, module) for path, module in found if any(_matches(spec, path, module) for spec in layers)]


def module_kernel(module: nn.Module) -> Optional[np.ndarray]:
    """A convolution's weight in the writer's kernel layout ``[*spatial, in, out]`` (one tile per output filter), or None.

    ``Conv*d`` weights are ``[out, in / groups, *spatial]``; ``ConvTranspose*d``
    weights ``[in, out / groups, *spatial]``, regrouped so that output filter
    ``g * out/groups + j`` is drawn over the inputs of its group ``g``.
    """
    weight = getattr(module, "weight", None)
    if not isinstance(module, CONVOLUTIONS + TRANSPOSED_CONVOLUTIONS) or not isinstance(weight, torch.Tensor):
        return None
    if isinstance(weight, nn.parameter.UninitializedParameter):
        return None
    kernel = weight.detach().to("cpu", torch.float32).numpy()
    if isinstance(module, TRANSPOSED_CONVOLUTIONS):
        groups, inputs, outputs = module.groups, kernel.shape[0], kernel.shape[1]
        spatial = kernel.shape[2:]
        kernel = kernel.reshape(groups, inputs // groups, outputs, *spatial).swapaxes(0, 1).reshape(inputs // groups, groups * outputs, *spatial)
        return np.moveaxis(kernel, (0, 1), (-2, -1))
    return np.moveaxis(kernel, (0, 1), (-1, -2))


def _first_tensor(output: Any) -> Any:
    """A module's output tensor: the first of a tuple or list (``MaxPool2d(return_indices=True)`` gives ``(output, indices)``)."""
    while isinstance(output, (tuple, list)) and output:
        output = output[0]
    return output


def _placement(module: nn.Module) -> tuple[torch.device, Optional[torch.dtype]]:
    """The device of the module's first parameter or buffer and the dtype of its first floating one (the probes follow them)."""
    device, dtype = None, None
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        if isinstance(tensor, nn.parameter.UninitializedTensorMixin):
            continue
        device = device or tensor.device
        if dtype is None and tensor.is_floating_point():
            dtype = tensor.dtype
        if device is not None and dtype is not None:
            break
    return device or torch.device("cpu"), dtype


@options_lib.takes()
class FeatureMapsLogger(Producer):
    """Logs the feature maps of a PyTorch module's submodules for fixed probes, from any training loop.

    Each :meth:`log` call registers forward hooks on the selected submodules, runs
    the probes through the module once (``torch.no_grad()``, eval mode; each
    submodule's ``training`` flag is restored afterwards), copies every hooked
    output to the CPU and removes the hooks; then it writes the grids,
    statistics and kernels through a :class:`~tb_featuremaps.FeatureMapsWriter`.
    Outputs are NCHW (channels first), as PyTorch computes them. A failure
    while logging warns and returns False; training goes on. Misconfiguration
    (arguments, unknown module names, probes or a pool the module cannot take)
    raises ``ValueError`` before anything is written: at construction, or at the
    first :meth:`log` (or :meth:`trace`), which runs the probes and the pool's
    first inputs once to check them.

    Example:

    ```python
    from tb_featuremaps.torch import FeatureMapsLogger

    logger = FeatureMapsLogger(model, "logs", probes=x_val[:8])  # [8, C, H, W]
    for step, (x, y) in enumerate(loader):
        train_step(x, y)
        if step % 100 == 0:
            logger.log(step)
    logger.close()
    # then: tensorboard --logdir logs
    ```

    Args:
        module: The ``nn.Module`` (a ``torch.compile``, ``DataParallel`` or
            ``DistributedDataParallel`` wrapper is unwrapped; its submodules are
            named without the wrapper's prefix), or None to give it later with
            :meth:`set_module` (as the Lightning callback does).
        log_dir: Directory TensorBoard reads; the run is ``log_dir/run_name``.
        probes: Inputs shaped like one batch of the module's input (a tensor or an
            array, at most 32), a list of them for a ``forward`` taking several
            positional inputs, or a dict for keyword inputs. They are moved to the
            module's device and (when floating) its dtype at each log. Default: ten
            shipped MNIST digits as ``[10, 1, 28, 28]`` in [0, 1].
        layers: Qualified module names as ``named_modules()`` gives them
            (``"features.0"``), compiled regexes matched against them, module classes
            or module objects; default: every convolution, transposed convolution
            and (non-adaptive) max or average pooling module.
        pool: Laid out like ``probes``; it goes through the module in batches of 128.
            Receptive fields are not computed for PyTorch modules: each strongest
            input is shown whole.
        all_ranks: With it False, only the chief (rank 0) logs, and :meth:`log` does
            nothing on the others (give each its own ``run_name``, e.g. ``f"rank{rank}"``,
            to log on all; ``docs/distributed.md``).
        options: An :class:`~tb_featuremaps.Options` holding options at once.
        owner: The class error messages name.
    """

    MODEL = "module"
    LAYER_TYPE = nn.Module
    LAYER_ENTRY = "module's qualified name (as named_modules() gives it, e.g. 'features.0')"

    def __init__(
        self,
        module: Optional[nn.Module],
        log_dir: Union[str, os.PathLike],
        probes: Any = None,
        labels: Any = None,
        layers: Any = None,
        *,
        options: Optional[options_lib.Options] = None,
        owner: str = "FeatureMapsLogger",
        **given: Any,
    ):
        super().__init__(
            log_dir, options_lib.collect(type(self), owner, options, given, probes=probes, labels=labels, layers=layers), probes_channels_first=True
        )
        if self.writer.pool is not None:
            _check_pool(owner, self.writer.probes, self.writer.pool)
        self._modules: dict[str, nn.Module] = {}  # the logged modules by path, once traced
        self._feed: Optional[tuple] = None  # (device, dtype, args, kwargs) of the probes last fed
        if module is not None:
            self.set_module(module)

    @property
    def module(self) -> Optional[nn.Module]:
        """The logged module (unwrapped), or None before :meth:`set_module`."""
        return self.model

    def set_module(self, module: nn.Module) -> None:
        """Logs ``module`` from now on; a module after another one starts a new run folder."""
        if not isinstance(module, nn.Module):
            raise ValueError(f"{self._owner}: expected a torch.nn.Module, got {type(module).__name__}.")
        module = unwrap(module)
        self._set_model(module)
        self._feed = None
        self._candidates = select_modules(self._owner, module, self.layers)  # an unknown name raises now

    def _default_layout(self, digits: probes_lib.Probes) -> probes_lib.Probes:
        """The digits as ``[10, 1, 28, 28]``: PyTorch computes channels first."""
        return probes_lib.Probes([digits.inputs[0][:, None]], digits.labels)

    # Tracing --------------------------------------------------------------

    def _select(self, timer: Optional[StageTimer]) -> Traced:
        """The first forward pass, checked: the modules that ran, and their outputs (the first log writes them)."""
        candidates = self._candidates
        try:
            outputs = timed(timer, "forward", self._run, candidates)
        except Exception as error:
            shapes = ", ".join(str(tuple(array.shape)) for array in self.writer.probes.inputs)
            hint = "the default probes are ten MNIST digits [10, 1, 28, 28]; " if self._default_probes else ""
            raise ValueError(
                f"{self._owner}: the {type(self.module).__name__} could not run on the probes {shapes}: {type(error).__name__}: {error}. "
                f"{hint}Pass probes= shaped like one batch of the module's input."
            ) from error
        missing = ", ".join(path for path, _ in candidates if path not in outputs)
        if missing and self.layers is not None:
            raise ValueError(f"{self._owner}: {missing} did not run in the module's forward pass on the probes, so there is nothing to log.")
        if missing:
            warn(f"{self._owner}: {missing} did not run in the module's forward pass on the probes and are not logged.")
        selected = [(path, module) for path, module in candidates if path in outputs]
        if not selected:
            raise ValueError(f"{self._owner}: none of the selected modules ran in the module's forward pass on the probes.")
        count = len(self.writer.probes.labels)
        for path, module in selected:
            shape = outputs[path].shape
            if len(shape) < 2 or shape[0] != count:
                raise ValueError(
                    f"{self._owner} cannot draw module '{path}' ({type(module).__name__}): its output {tuple(shape)} is not "
                    f"[{count} probes, channels, ...]."
                )
        if self.writer.pool is not None:
            self._check_pool_runs(selected)
        self._modules = dict(selected)
        descriptions = {
            path: LayerDescription(type(module).__name__, True, [None, *[int(size) for size in outputs[path].shape[1:]]], patch_reason=NO_FIELD)
            for path, module in selected
        }
        return Traced(descriptions, {path: outputs[path] for path, _ in selected})

    def _check_pool_runs(self, selected: list[tuple[str, nn.Module]]) -> None:
        """Runs the pool's first inputs through the module once; raises ``ValueError`` naming ``pool=`` when it cannot take them."""
        pool, probes = self.writer.pool.inputs, self.writer.probes.inputs
        try:
            self._run(selected, [array[:2] for array in pool])
        except Exception as error:
            shapes = ", ".join(str(tuple(array.shape)) for array in pool)
            expected = ", ".join(str(tuple(array.shape)) for array in probes)
            looks_last = any(a.ndim >= 3 and a.shape[-1] == b.shape[1] and a.shape[1] != b.shape[1] for a, b in zip(pool, probes))
            hint = " It looks channels-last: move its last axis to axis 1 (tensor.permute or np.moveaxis(pool, -1, 1))." if looks_last else ""
            raise ValueError(
                f"{self._owner}: the {type(self.module).__name__} could not run on pool= {shapes}: {type(error).__name__}: {error}. "
                f"Pass pool= laid out like probes= {expected} (channels first, as the module takes them).{hint}"
            ) from error

    # Running the module -------------------------------------------------------

    def _forward(self, inputs: Optional[list], paths: list[str]) -> dict[str, np.ndarray]:
        return self._run([(path, self._modules[path]) for path in paths], inputs)

    def _kernel(self, path: str) -> Optional[np.ndarray]:
        return module_kernel(self._modules[path])

    def _inputs(self) -> tuple[list, dict]:
        """The probes as tensors on the module's device, floating ones in its dtype (cached while those stay)."""
        device, dtype = _placement(self.module)
        if self._feed is None or self._feed[:2] != (device, dtype):
            self._feed = (device, dtype, *self._tensors(self.writer.probes.inputs, self.writer.probes.names))
        return self._feed[2], self._feed[3]

    def _tensors(self, arrays: list, names: Optional[list]) -> tuple[list, dict]:
        """``arrays`` as the module's positional (or, with ``names``, keyword) inputs on its device, floating ones in its dtype."""
        device, dtype = _placement(self.module)
        tensors = []
        for array in arrays:
            tensor = torch.as_tensor(np.ascontiguousarray(array))
            if tensor.is_floating_point():
                tensor = tensor.to(dtype or torch.get_default_dtype())
            tensors.append(tensor.to(device))
        return (tensors, {}) if names is None else ([], dict(zip(names, tensors)))

    def _run(self, modules: list[tuple[str, nn.Module]], arrays: Optional[list] = None) -> dict[str, np.ndarray]:
        """One forward pass of the probes (or of ``arrays``, a pool batch); each module's first output as float32 NumPy (a copy, on the CPU)."""
        args, kwargs = self._inputs() if arrays is None else self._tensors(arrays, self.writer.pool.names)
        outputs: dict[str, np.ndarray] = {}

        def hook_for(path: str):
            def hook(module: nn.Module, inputs: Any, output: Any) -> None:
                if path in outputs:
                    return  # a module called twice: its first call is logged
                tensor = _first_tensor(output)
                if not isinstance(tensor, torch.Tensor):
                    raise TypeError(f"module '{path}' returned {type(output).__name__}, not a tensor")
                # A copy: an in-place operation after the module (ReLU(inplace=True)) must not change what is logged.
                outputs[path] = tensor.detach().to("cpu", torch.float32, copy=True).numpy()

            return hook

        with _hooks(modules, hook_for), _eval_mode(self.module), torch.no_grad():
            self.module(*args, **kwargs)
        return outputs


def _check_pool(owner: str, probes: probes_lib.Probes, pool: probes_lib.Probes) -> None:
    """Refuses a pool that cannot go through the module as the probes do: other inputs, axes or a non-float dtype for float probes."""
    if (probes.names is None) != (pool.names is None) or sorted(probes.names or []) != sorted(pool.names or []):
        raise ValueError(
            f"{owner}: pool= holds inputs {pool.names or len(pool.inputs)} but probes= hold {probes.names or len(probes.inputs)}; "
            "pass pool= with the same inputs as probes= (a tensor, a list or a dict keyed alike)."
        )
    given = dict(zip(pool.names, pool.inputs)) if pool.names is not None else dict(enumerate(pool.inputs))
    for key, probe in zip(probes.names, probes.inputs) if probes.names is not None else enumerate(probes.inputs):
        inputs = given[key]
        if inputs.ndim != probe.ndim:
            raise ValueError(
                f"{owner}: pool= has {inputs.ndim} axes per batch but probes= have {probe.ndim} ({tuple(inputs.shape)} and "
                f"{tuple(probe.shape)}); pass pool= laid out like probes=, a batch axis first."
            )
        if np.issubdtype(probe.dtype, np.floating) and not np.issubdtype(inputs.dtype, np.floating):
            raise ValueError(
                f"{owner}: pool= is {inputs.dtype} but probes= are {probe.dtype}; pass pool= preprocessed as the probes are "
                "(e.g. pool.float() / 255 for 0..255 images)."
            )


@contextmanager
def _hooks(modules: list[tuple[str, nn.Module]], hook_for) -> Iterator[None]:
    """Forward hooks on ``modules`` for the duration of the block only."""
    handles = []
    try:
        for path, module in modules:
            handles.append(module.register_forward_hook(hook_for(path)))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode for the block; each submodule's own ``training`` flag is restored afterwards."""
    flags = [(submodule, submodule.training) for submodule in module.modules()]
    try:
        module.eval()
        yield
    finally:
        for submodule, training in flags:
            submodule.training = training
