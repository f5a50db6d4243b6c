"""``FeatureMapsWriter``: the framework-neutral producer of the format: arrays in, a TensorBoard run out."""

from __future__ import annotations

import atexit
import collections
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

import numpy as np

from ..format import convergence, filesystem, kinds, metadata
from ..format.kinds.strongest import RECEPTIVE_FIELD, WHOLE_INPUT, StrongestExtra
from ..render import DrawnLayer, draw, encode_all, encode_png, filter_health, gray_levels, strongest
from ..render.reduce import to_maps
from ..warning import warn
from . import arguments, budget, checks, runs
from . import probes as probes_lib
from .summary import StepBudget, SummaryWriter

StageTimer = Callable[[str, float], None]
"""Called as ``timer(stage, seconds)`` after each stage of a log event (benchmarks)."""

STAGES = ("forward", "kernels", "stats", "normalise_tile", "png", "strongest", "write")
"""The stages of a log event, in order: producers time ``forward`` (with the pool's) and ``kernels``, the writer the rest."""


@dataclass(frozen=True)
class LayerDescription:
    """What a producer knows of a logged layer beyond its output array (all optional)."""

    layer_class: str = ""
    """The layer's class name, shown in the panel (e.g. ``"Conv2D"``)."""
    channels_first: bool = False
    """Whether the output's channel axis is axis 1 (PyTorch's NCHW, Keras ``channels_first``)."""
    output_shape: Optional[list] = None
    """The output shape with ``None`` for the batch axis; default: the first output's shape."""
    receptive_field: Optional[metadata.ReceptiveField] = None
    """Where the layer's output units look in the input, for the strongest inputs' patches (default: the whole input)."""
    receptive_input: int = 0
    """Which input (of several) ``receptive_field`` refers to."""
    patch_reason: str = ""
    """Why there is no ``receptive_field`` (shown with the whole-input patches), e.g. ``"cannot follow 'up' (UpSampling2D)"``."""


class FeatureMapsWriter:
    """Writes feature maps of any training loop to a TensorBoard run in the tb-featuremaps format.

    Give it the probe inputs once and, at each step, every layer's output for those
    probes (NumPy arrays or anything ``np.asarray`` takes: TensorFlow, JAX, CPU torch
    tensors); it draws the grids, statistics, Images and Scalars copies and writes
    them, one step whole or not at all. It owns the run folder (a new training takes
    a new folder, ``resume=True`` continues the newest), keeps steps growing and
    warns (once per kind of failure) instead of raising when a step cannot be
    written. The Keras callback, ``FeatureMapsLogger`` and ``tb_featuremaps.torch``
    all write through it.

    Example (a JAX, NumPy or any other loop):

    ```python
    from tb_featuremaps import FeatureMapsWriter

    writer = FeatureMapsWriter("logs", probes=x_val[:8], labels=y_val[:8], step_unit="step")
    for step in range(10_000):
        params = train_step(params, next(batches))
        if step % 500 == 0:
            conv1, conv2 = features(params, x_val[:8])  # [8, H, W, C] each
            writer.write(step, {"conv1": conv1, "conv2": conv2}, kernels={"conv1": params["conv1"]["w"]})
    writer.close()
    # then: tensorboard --logdir logs
    ```

    Args:
        log_dir: Directory TensorBoard reads; the run is ``log_dir/run_name``.
        probes: The inputs the activations are of, shaped like one batch (at most 32),
            or a list/dict of arrays for several inputs, or a dataset (its first batch):
            drawn once as the run's probe pictures. Default: ten shipped MNIST digits.
        labels: One label per probe (default: dataset targets or the probe index).
        run_name: The run's folder name (``docs/format.md``, "Where").
        step_unit: What a step counts, shown in the panel: ``"epoch"``, ``"batch"`` or ``"step"``.
        resume: Continue the newest run of this name after its last logged step,
            instead of starting a new folder when it already holds a training.
        max_filters: At most this many filters (the first ones) are drawn per layer.
        max_tile_size: Maps larger than this (pixels per side) are block-averaged to fit.
        write_images: Also write the grids for TensorBoard's stock Images dashboard:
            ``"first"`` (default) the first probe's grid only, ``True`` every probe's,
            ``False`` none. The Feature Maps panel reads its own series, never these.
        max_step_bytes: A step's budget of encoded bytes (default 4 MiB, about 15x a
            step of a small CNN; None: no budget). When the run's first step would take
            more, the run is drawn smaller, the same at every step, by the order of
            :data:`.budget.LADDER` (Images copies, patch size, ranks, tile size) until
            it fits, and one warning says what was reduced and by how much. Probes,
            filters and stats are never dropped.
        probes_channels_first: Whether the probe inputs are channels-first (for their pictures).
        pool: Inputs to find each filter's strongest responses among (e.g. ``x_val[:500]``;
            an array, a list/dict per input, or a dataset read up to 5,000 examples):
            at each step, pass their layer outputs as ``write(..., pool_activations=)``
            and every filter's ``top_k`` strongest inputs, the patches under them and
            its change since the previous step are logged (``docs/format.md``).
        pool_labels: One label per pool input (default: dataset targets or the index).
        top_k: How many strongest pool inputs are kept per filter (default 9; only with ``pool=``).
        timer: Called as ``timer(stage, seconds)`` after each stage (benchmarks).
        background: Draw, encode and write on a background thread, in order: :meth:`write`
            only copies the arrays to host memory and queues them (waiting while
            ``QUEUE_SIZE`` steps are pending, so memory stays bounded and no step is
            dropped). :meth:`flush` waits for the queued steps; :meth:`close`, the end
            of ``fit`` and interpreter exit flush too. Failures on the worker are
            reported as warnings on the caller's thread at the next call. A process
            killed outright loses at most ``QUEUE_SIZE + 1`` steps (those queued and
            the one being written); ``background=False`` writes each step before
            :meth:`write` returns (``docs/format.md``, "What a crash costs").
    """

    def __init__(
        self,
        log_dir: Union[str, os.PathLike],
        probes: Any = None,
        labels: Any = None,
        *,
        run_name: str = metadata.DEFAULT_RUN_NAME,
        step_unit: str = "step",
        resume: bool = False,
        max_filters: int = 128,
        max_tile_size: int = 64,
        write_images: Union[bool, str] = "first",
        max_step_bytes: Optional[int] = arguments.DEFAULT_MAX_STEP_BYTES,
        probes_channels_first: bool = False,
        pool: Any = None,
        pool_labels: Any = None,
        top_k: Optional[int] = None,
        timer: Optional[StageTimer] = None,
        background: bool = True,
        owner: str = "FeatureMapsWriter",
    ):
        self.owner = owner
        self.log_dir = arguments.path(owner, "log_dir", log_dir)
        self.run_name = arguments.run_name(owner, run_name)
        self.step_unit = arguments.choice(owner, "step_unit", step_unit, metadata.STEP_UNITS)
        self.resume = arguments.boolean(owner, "resume", resume)
        self.max_filters = arguments.positive_integer(owner, "max_filters", max_filters)
        self.max_tile_size = arguments.positive_integer(owner, "max_tile_size", max_tile_size)
        self.write_images = arguments.images(owner, write_images)
        self.max_step_bytes = arguments.optional_positive_integer(owner, "max_step_bytes", max_step_bytes)
        self._budget = StepBudget(self.max_step_bytes, owner)
        self.probes = probes if isinstance(probes, probes_lib.Probes) else probes_lib.prepare(probes, labels, owner)
        self.probes_channels_first = bool(probes_channels_first)
        arguments.labels_need_probes(owner, pool, pool_labels, "pool")
        self.pool = pool if pool is None or isinstance(pool, probes_lib.Probes) else probes_lib.prepare_pool(pool, pool_labels, owner)
        if self.pool is not None:
            checks.pool_inputs(owner, self.pool.inputs)
        self.top_k = arguments.top_k(owner, top_k, pool)
        self._user_drawing = budget.Drawing(self.write_images, self.max_tile_size, strongest.MAX_PATCH_SIZE, self.top_k)
        self._drawing = self._first_drawing()
        self._largest: dict[str, int] = {}  # what the step being drawn drew from: its largest tile and patch sides, most ranks
        self._pictures: dict[int, strongest.PoolPictures] = {}
        self._previous_kernels: dict[str, np.ndarray] = {}  # caller's thread
        self._previous_responses: dict[str, np.ndarray] = {}  # worker's thread
        self._timer = timer
        self._summary: Optional[SummaryWriter] = None
        self._run: Optional[runs.RunChoice] = None
        self._after = 0  # run folders up to this number are never taken by a new run of this writer
        self._infos: dict[str, metadata.LayerInfo] = {}
        self._last_step: Optional[int] = None
        self._probes_written = False
        self._failures: dict[str, list[int]] = {}
        self._notices: collections.deque[str] = collections.deque()  # warnings from the worker, given on the caller's thread
        self._deletion_warned = False
        self.background = arguments.boolean(owner, "background", background)
        self._worker: Optional[_Worker] = None

    # Where ----------------------------------------------------------------

    @property
    def run_dir(self) -> str:
        """The run folder: chosen at the first write (``docs/format.md``, "Where")."""
        return self._run.run_dir if self._run is not None else os.path.join(self.log_dir, self.run_name)

    @property
    def last_step(self) -> Optional[int]:
        """The last step written (or, after a resume, the last the folder held), or None."""
        self.open()
        return self._last_step

    def open(self) -> None:
        """Chooses the run folder now (the first write does it otherwise); raises ``OSError`` if it cannot be made."""
        if self._run is not None:
            return
        choice = runs.choose_run_dir(self.log_dir, self.run_name, resume=self.resume, after=self._after)
        if self._after:
            warn(
                f"{self.owner} is used with a new model; it logs to {choice.run_dir!r} so the earlier run's series stay intact.",
            )
        elif choice.taken:
            warn(
                f"{self.owner}: {choice.taken[-1]!r} already holds another training's feature maps; this training logs to "
                f"{choice.run_dir!r} so both stay intact. To continue that run instead, resume it "
                "(fit(..., initial_epoch=N), or resume=True); to name the run, pass run_name=.",
            )
        try:
            filesystem.makedirs(choice.run_dir)
        except OSError as error:
            raise OSError(f"{self.owner} cannot create its log directory {choice.run_dir!r} ({error}); pass a log_dir you can write to.") from error
        self._run = choice
        self._last_step = choice.last_step
        self._summary = SummaryWriter(choice.run_dir, self._budget)

    def new_run(self) -> None:
        """Makes the next write start a new run folder (the same writer used for another model)."""
        self.close()
        self._after = max(self._after, self._run.number if self._run is not None else 1)
        self._run, self._infos, self._last_step, self._probes_written, self.resume = None, {}, None, False, False
        self._previous_kernels, self._previous_responses = {}, {}
        self._budget = StepBudget(self.max_step_bytes, self.owner)
        self._drawing = self._first_drawing()

    # Writing --------------------------------------------------------------

    def write(
        self,
        step: int,
        activations: Mapping[str, Any],
        kernels: Optional[Mapping[str, Any]] = None,
        layers: Optional[Mapping[str, LayerDescription]] = None,
        pool_activations: Optional[Mapping[str, Any]] = None,
    ) -> bool:
        """Writes one step (queues it, with ``background=True``); returns whether it was accepted.

        Arguments it could not use (wrong shapes, keys or descriptions, see
        :mod:`.checks`) raise ``ValueError`` before anything is written; later steps
        still log. A failure warns, once per kind, and returns False; with ``background=True`` a
        failure while drawing or writing is warned about at the next call (or at
        :meth:`flush` / :meth:`close`) and costs that step only.

        Args:
            step: The step (growing: a step not after :attr:`last_step` is a ``ValueError``).
            activations: Layer path → its output for the probes, ``[probes, ...]`` with
                the channel axis last (or first, see ``layers``). With ``background=True``
                a NumPy array is read later, on the worker: pass one your loop will not
                change in place (framework tensors are copied to host here).
            kernels: Layer path → its convolution kernel, ``[*spatial, in, out]``
                (Keras' layout; each output filter is drawn averaged over its inputs,
                here, so the optimizer may update the weights in place afterwards).
            layers: Layer path → :class:`LayerDescription`, read at a layer's first step.
            pool_activations: Layer path → its output for the writer's ``pool``
                (``[N, ...]``; or :class:`~tb_featuremaps.render.strongest.Responses`
                of consecutive batches), reduced here to each filter's maximum per input.
                Layers with 1 or 2 spatial axes get strongest inputs; others are skipped.
        """
        step = arguments.step(self.owner, step)
        layers = dict(layers or {})
        self._check(activations, kernels, layers, pool_activations)
        self.open()
        self._report_pending_warnings()
        if self._last_step is not None and step <= self._last_step:
            raise ValueError(f"{self.owner}: step {step} is not after the last step written ({self._last_step}); steps must grow.")
        try:  # on the caller's thread: host copies, so that training may change the arrays afterwards
            arrays = {path: _host_copy(values) for path, values in activations.items()}
            kernels = {path: kernel for path, kernel in (kernels or {}).items() if path in arrays}
            maps = {path: kernel_maps(kernel) for path, kernel in kernels.items()}
            changes = {path: self._kernel_change(path, kernel) for path, kernel in kernels.items()}
            found = {
                path: self._responses(path, values, layers) for path, values in (pool_activations or {}).items() if _poolable(path, values, arrays)
            }
        except Exception as error:
            self.report_failure(step, error)
            return False
        item = (step, arrays, maps, layers, changes, found)
        if self.background:
            if self._worker is None:
                self._worker = _Worker(self)
            self._worker.put(item)
            self._last_step = step
            return True
        error = self._write_step(*item)
        self._report_pending_warnings()
        if error is not None:
            self.report_failure(step, error)
            return False
        self._last_step = step
        return True

    def _check(self, activations: Any, kernels: Any, layers: dict, pool_activations: Any) -> None:
        """Refuses what :meth:`write` could not use, naming the argument (:mod:`.checks`)."""
        checks.activations(self.owner, activations, layers, len(self.probes.labels))
        checks.layer_names(self.owner, "kernels", kernels or {})
        checks.layer_names(self.owner, "layers", layers)
        pool_inputs = self.pool.inputs if self.pool is not None else None
        for path, description in layers.items():
            checks.description(self.owner, path, description, pool_inputs)
        if pool_activations and self.pool is not None:
            checks.pool_activations(self.owner, pool_activations, activations, layers, len(self.pool.labels), self.max_filters)

    def flush(self) -> None:
        """Waits until every queued step is written; warns about the steps that failed."""
        if self._worker is not None:
            self._worker.wait()
        self._report_pending_warnings()

    def _report_pending_warnings(self) -> None:
        """Gives the worker's news as warnings on the caller's thread: failed steps, the byte budget's one warning."""
        if self._worker is not None:
            for step, error in self._worker.take_failures():
                self.report_failure(step, error)
        message, self._budget.warning = self._budget.warning, None
        if message:
            warn(message)
        while self._notices:
            warn(self._notices.popleft())

    def _kernel_change(self, path: str, kernel: Any) -> np.ndarray:
        """Each output filter's relative kernel change since the previous step (caller's thread: the optimizer may change it in place)."""
        current = np.array(probes_lib.to_numpy(kernel), np.float32)  # a copy: the optimizer may change the kernel in place
        current = current.reshape(-1, current.shape[-1])[:, : self.max_filters]
        change = strongest.relative_change(self._previous_kernels.get(path), current)
        self._previous_kernels[path] = current
        return change

    def _responses(self, path: str, values: Any, layers: Mapping[str, LayerDescription]) -> strongest.Responses:
        if self.pool is None:
            raise ValueError(
                f"{self.owner}: write(pool_activations=) needs the writer's pool; pass pool= (the inputs they are the outputs of) to the constructor."
            )
        if isinstance(values, strongest.Responses):
            return values
        channels_first = layers.get(path, LayerDescription()).channels_first
        return strongest.responses(probes_lib.to_numpy(values), channels_first, self.max_filters)

    def _write_step(
        self, step: int, activations: Mapping, kernels: Mapping, layers: Mapping, changes: Mapping, found: Mapping
    ) -> Optional[Exception]:
        """Draws and writes one step whole, or discards it and returns the error."""
        try:
            with np.errstate(all="ignore"):  # exploding or NaN activations are what the logs are for
                if self._drawing is None:
                    self._fit_first_step(step, activations, kernels, layers, changes, found)
                else:
                    self._write(step, activations, kernels, layers, changes, found)
                self._time("write", self._summary.flush)
                self._probes_written = True
        except Exception as error:  # a training loop matters more than one log event
            self._summary.discard()  # a step is written whole or not at all
            return error
        return None

    def report_failure(self, step: int, error: Exception) -> None:
        """Warns that ``step`` could not be logged: once per kind of failure, the rest counted at :meth:`close`."""
        kind = _failure_kind(error)
        if kind not in self._failures:
            warn(
                f"{self.owner} could not log step {step}: {type(error).__name__}: {error}. "
                "Training goes on; later steps that fail the same way are counted at the end.",
            )
        self._failures.setdefault(kind, []).append(step)

    def _time(self, stage: str, function: Callable, *args) -> Any:
        return timed(self._timer, stage, function, *args)

    def _write(self, step: int, activations: Mapping, kernels: Mapping, layers: Mapping, changes: Mapping, found: Mapping) -> None:
        if self._summary.reopen_if_deleted():
            self._probes_written = False  # the new event file carries the run's probes and pool again
            if not self._deletion_warned:
                self._deletion_warned = True
                self._notices.append(
                    f"{self.owner}: the run folder {self.run_dir!r} was deleted while logging; starting a new event file there "
                    f"from step {step} on (the steps logged before are gone with the folder). This warning is not repeated."
                )
        if not self._probes_written:
            self._write_probes(step)
        responses = {path: self._response_change(path, found[path]) for path in found}
        for path, values in activations.items():
            description = layers.get(path, LayerDescription())
            change = (responses.get(path), changes.get(path))
            self._write_series(step, metadata.KIND_ACTIVATIONS, path, values, description, description.channels_first, change)
            if path in kernels:
                self._write_series(step, metadata.KIND_WEIGHTS, path, kernels[path], description, False)
            if path in found:
                self._time("strongest", self._write_strongest, step, path, found[path], description)

    def _first_drawing(self) -> Optional[budget.Drawing]:
        """The user's arguments without a budget; None with one: the run's first step decides (:meth:`_fit_first_step`)."""
        return self._user_drawing if self.max_step_bytes is None else None

    def _fit_first_step(self, step: int, *item) -> None:
        """Draws a run's first step, again with each rung of the budget's ladder taken until it fits; the run keeps that drawing."""
        saved = (dict(self._infos), dict(self._previous_responses), self._probes_written)

        def attempt(drawing: budget.Drawing) -> budget.Attempt:
            self._summary.discard()
            self._infos, self._previous_responses, self._probes_written = dict(saved[0]), dict(saved[1]), saved[2]
            self._drawing, self._largest = drawing, {}
            self._write(step, *item)
            layers = self._summary.budget.pending
            return budget.Attempt(sum(layers.values()), layers, dict(self._largest))

        try:
            decision = budget.choose(self._user_drawing, self.max_step_bytes, attempt)
        except BaseException:
            self._drawing = None  # the next step decides again
            raise
        self._drawing = decision.drawing
        message = budget.warning(self.owner, self.max_step_bytes, step, decision)
        if message:
            self._budget.warning, self._budget.warned = message, decision.taken[-1][1] > self.max_step_bytes

    def _response_change(self, path: str, found: strongest.Responses) -> np.ndarray:
        change = strongest.relative_change(self._previous_responses.get(path), found.values)
        self._previous_responses[path] = found.values
        return change

    def _write_series(
        self, step: int, kind: str, path: str, values: Any, description: LayerDescription, channels_first: bool, change: tuple = (None, None)
    ) -> None:
        """One grid series' event; for activations with their stats, ``change`` (``(response, kernel)`` change per filter) and Scalars."""
        values = probes_lib.to_numpy(values)
        drawn = self._time("stats", draw, values, channels_first, self.max_filters, self._drawing.max_tile_size)
        side = max(to_maps(values, channels_first)[0].shape[1:3])
        self._largest["max_tile_size"] = max(self._largest.get("max_tile_size", 0), side)
        info = self._info(kind, path, drawn, description, values, budget.reduced(self._user_drawing, self._drawing, "max_tile_size", side))
        grids, masks = self._time("normalise_tile", gray_levels, drawn, info.layout)
        pngs = self._time("png", encode_all, grids, masks)
        tensors, health = None, None
        if kind == metadata.KIND_ACTIVATIONS:
            changes = strongest.change_tensor(info.filters_shown, *change)
            tensors = {metadata.KIND_STATS: drawn.stats, metadata.KIND_CHANGE: changes}
            health = filter_health(drawn.stats)
            changing = metadata.changing_filters(changes)
            if np.isfinite(changing):
                health["changing_filters"] = changing
        self._time("write", self._summary.write_layer, step, info, pngs, tensors, self._drawing.write_images, health)

    def _write_strongest(self, step: int, path: str, found: strongest.Responses, description: LayerDescription) -> None:
        """The ``strongest/`` sheet, ``topk/`` and ``responses/`` tensors of one layer (docs/format.md, "What each filter looks for"),
        and with class labels for the pool the layer's mean selectivity for the Scalars dashboard."""
        inputs, values, positions = strongest.top_k(found, self._drawing.top_k)
        available = min(self.top_k, found.values.shape[0])
        self._largest["top_k"] = max(self._largest.get("top_k", 0), available)
        field, pictures = description.receptive_field, self._pool_pictures(description.receptive_input)
        sheet = strongest.patch_sheet(pictures, inputs, positions, field, self._drawing.max_patch_size)
        side = max(sheet.patch_size)
        self._largest["max_patch_size"] = max(self._largest.get("max_patch_size", 0), side)
        activations = self._infos[metadata.tag_for(metadata.KIND_ACTIVATIONS, path)]
        key = metadata.tag_for(metadata.KIND_STRONGEST, path)
        if key not in self._infos:
            self._infos[key] = metadata.LayerInfo(
                kind=metadata.KIND_STRONGEST,
                layer=path,
                layer_class=activations.layer_class,
                index=activations.index,
                output_shape=activations.output_shape,
                layout=sheet.layout,
                filters_shown=int(inputs.shape[0]),
                filters_total=activations.filters_total,
                probe_labels=["pool"],
                step_unit=self.step_unit,
                reduction=sheet.reduction,
                normalization=metadata.INPUT_RANGE,
                tiles_per_filter=int(inputs.shape[1]),
                extra=StrongestExtra(
                    top_k=int(inputs.shape[1]),
                    pool_size=int(found.values.shape[0]),
                    receptive_field=field,
                    patch=WHOLE_INPUT if field is None else RECEPTIVE_FIELD,
                    patch_reason="" if field is not None else description.patch_reason,
                    patch_size=tuple(int(side) for side in sheet.patch_size),
                    input_range=tuple(float(value) for value in pictures.input_range),
                ),
                reduced={
                    **budget.reduced(self._user_drawing, self._drawing, "max_patch_size", side),
                    **budget.reduced(self._user_drawing, self._drawing, "top_k", available),
                },
            )
        topk = strongest.topk_tensor(inputs, values, positions, sheet.corners)
        tensors = {metadata.KIND_TOPK: topk, kinds.responses.NAME: found.values}
        health = {}
        if convergence.labels_are_classes(self.pool.labels):
            selectivity = convergence.mean_selectivity(found.values, self.pool.labels)
            if np.isfinite(selectivity):
                health["selectivity"] = selectivity
        self._summary.write_layer(step, self._infos[key], [encode_png(sheet.pixels)], tensors, False, health)

    def _pool_pictures(self, input_index: int) -> strongest.PoolPictures:
        if input_index not in self._pictures:
            self._pictures[input_index] = strongest.PoolPictures.of(self.pool.inputs[input_index], self.probes_channels_first)
        return self._pictures[input_index]

    def _info(self, kind: str, path: str, drawn: DrawnLayer, description: LayerDescription, values: Any, reduced: dict) -> metadata.LayerInfo:
        key = metadata.tag_for(kind, path)
        if key not in self._infos:
            index = sum(1 for info in self._infos.values() if info.kind == metadata.KIND_ACTIVATIONS)
            if kind == metadata.KIND_WEIGHTS:
                index = self._infos[metadata.tag_for(metadata.KIND_ACTIVATIONS, path)].index
            shape = description.output_shape or [None, *[int(size) for size in np.shape(values)[1:]]]
            self._infos[key] = metadata.LayerInfo(
                kind=kind,
                layer=path,
                layer_class=description.layer_class,
                index=index,
                output_shape=list(shape),
                layout=drawn.layout(),
                filters_shown=int(drawn.maps.shape[-1]),
                filters_total=drawn.filters_total,
                probe_labels=self.probes.labels if kind == metadata.KIND_ACTIVATIONS else ["kernel"],
                step_unit=self.step_unit,
                reduction=drawn.reduction,
                normalization=drawn.normalization,
                reduced=reduced,
            )
        return self._infos[key]

    def _write_probes(self, step: int) -> None:
        first = self.probes.inputs[0]
        pictures = [probes_lib.probe_image(example, self.probes_channels_first) for example in first]
        height, width = pictures[0].shape[:2]
        self._summary.write_probes(step, [encode_png(picture) for picture in pictures], width, height, self.probes.labels, list(first.shape[1:]))
        if self.pool is not None:
            pool = self._pool_pictures(0)
            pngs = encode_all(np.stack([strongest.pool_picture(levels) for levels in pool.levels]))
            height, width = strongest.pool_picture(pool.levels[0]).shape[:2]
            self._summary.write_pool(step, pngs, width, height, self.pool.labels, list(self.pool.inputs[0].shape[1:]), list(pool.input_range))

    # Closing --------------------------------------------------------------

    def close(self) -> None:
        """Writes the queued steps, closes the event file (a later write opens a new one) and reports the steps failures cost."""
        if self._worker is not None:
            self._worker.stop()
            self._report_pending_warnings()
            self._worker = None
        summary = self._summary
        if summary is not None:
            self._summary = SummaryWriter(summary.run_dir, self._budget)
            try:
                summary.close()
            except Exception as error:
                warn(f"{self.owner} could not close its event file: {type(error).__name__}: {error}.")
        for kind, steps in self._failures.items():
            if len(steps) > 1:
                shown = ", ".join(map(str, steps[:10])) + (", ..." if len(steps) > 10 else "")
                warn(f"{self.owner} could not log {len(steps)} steps ({shown}): {kind}.")
        self._failures = {}

    def __enter__(self) -> FeatureMapsWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


QUEUE_SIZE = 2
"""Steps a background writer holds queued before :meth:`FeatureMapsWriter.write` waits; a killed process loses at most one more."""


class _Worker:
    """The background thread of one writer: draws and writes queued steps in order."""

    def __init__(self, writer: FeatureMapsWriter):
        self._writer = writer
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self._failures: list[tuple[int, Exception]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"{writer.owner} writer", daemon=True)
        self._thread.start()
        _LIVE_WORKERS.add(self)

    def put(self, item: tuple) -> None:
        self._queue.put(item)

    def wait(self) -> None:
        self._queue.join()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()
        _LIVE_WORKERS.discard(self)

    def take_failures(self) -> list[tuple[int, Exception]]:
        with self._lock:
            failures, self._failures = self._failures, []
        return failures

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                error = self._writer._write_step(*item)
            except Exception as unexpected:  # the thread must live on: a dead worker would leave flush() waiting
                error = unexpected
            finally:
                self._queue.task_done()
            if error is not None:
                with self._lock:
                    self._failures.append((item[0], error))


_LIVE_WORKERS: set[_Worker] = set()
"""The workers not stopped yet, flushed at interpreter exit."""


@atexit.register
def _flush_at_exit() -> None:
    """Writes what background writers still hold when the interpreter exits without closing them."""
    for worker in list(_LIVE_WORKERS):
        worker.wait()


def timed(timer: Optional[StageTimer], stage: str, function: Callable, *args) -> Any:
    """``function(*args)``, reporting its duration to ``timer`` as ``stage`` (when there is a timer)."""
    if timer is None:
        return function(*args)
    started = time.perf_counter()
    result = function(*args)
    timer(stage, time.perf_counter() - started)
    return result


def _failure_kind(error: Exception) -> str:
    """What makes failures the same kind: type and message, without the file an ``OSError`` names (each step may open a new one)."""
    if isinstance(error, OSError) and error.errno is not None and error.strerror:
        return f"{type(error).__name__}: [Errno {error.errno}] {error.strerror}"
    return f"{type(error).__name__}: {error}"


def _poolable(path: str, values: Any, activations: Mapping) -> bool:
    """Whether a layer's pool output gets strongest inputs: a logged layer with 1 or 2 spatial axes (or reduced already)."""
    return path in activations and (isinstance(values, strongest.Responses) or strongest.spatial_axes(values) in (1, 2))


def _host_copy(values: Any) -> np.ndarray:
    """``values`` as NumPy in host memory that the caller's later in-place changes cannot reach.

    TensorFlow and JAX arrays are immutable, so their host arrays are kept; a torch
    tensor's NumPy view shares its memory, so it is copied. NumPy arrays are the caller's.
    """
    array = probes_lib.to_numpy(values)
    return np.array(array) if hasattr(values, "detach") else array


def kernel_maps(kernel: Any) -> np.ndarray:
    """A kernel ``[*spatial, in, out]`` as maps ``[1, *spatial, out]``: each output filter averaged over its inputs."""
    kernel = probes_lib.to_numpy(kernel).astype(np.float32)
    if kernel.ndim < 3:
        raise ValueError(f"a kernel needs spatial, input and output axes ([*spatial, in, out]); got shape {kernel.shape}")
    return kernel.mean(axis=-2)[None]
