"""Writes feature-map summaries to an event file in the format of :mod:`.metadata`.

Writes event files with :mod:`.eventfile` (no TensorFlow needed), so the
callback writes the same files whichever Keras backend trains the model.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Optional, Union

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.util import tensor_util

from ..format import kinds, metadata
from ..format.eventfile import EventFile


def _image_tensor(pngs: Sequence[bytes], width: int, height: int):
    """The tensor of an image value (:func:`metadata.image_value`)."""
    return tensor_util.make_tensor_proto(np.array(metadata.image_value(pngs, width, height), dtype=object))


def images_copies(write_images: Union[bool, str], pngs: Sequence[bytes]) -> Sequence[bytes]:
    """The grids copied for the stock Images dashboard: every probe's (``True``), the first's (``"first"``) or none."""
    if write_images is True:
        return pngs
    return pngs[:1] if write_images == "first" else []


def byte_text(count: int) -> str:
    """``count`` bytes as KiB or MiB, for warnings."""
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count / 1024:.1f} KiB"


class StepBudget:
    """``max_step_bytes``: the encoded bytes of each step's layers, and what to do past the budget.

    The writer fits a run's first step to the budget (:mod:`.budget`); a later step
    whose layers still encode to more than ``max_bytes`` warns once (the writer
    gives :attr:`warning` on its caller's thread), naming the knobs and the biggest
    layers, and is written whole; steps after it leave out the Images-dashboard
    copies (:attr:`images_dropped`), which the Feature Maps panel never reads, so
    nothing it shows is lost.
    """

    def __init__(self, max_bytes: Optional[int], owner: str = "FeatureMapsWriter"):
        self.max_bytes = max_bytes
        self.owner = owner
        self.images_dropped = False
        self.warned = False
        self.warning: Optional[str] = None  # the one warning, until the writer gives it on the caller's thread
        self._layers: dict[str, int] = {}

    def add(self, layer: str, size: int) -> None:
        """Counts ``size`` bytes of ``layer`` towards the pending step."""
        self._layers[layer] = self._layers.get(layer, 0) + size

    @property
    def pending(self) -> dict[str, int]:
        """Layer path → its bytes in the pending step so far."""
        return dict(self._layers)

    def clear(self) -> None:
        """Forgets the pending step (discarded)."""
        self._layers = {}

    def step_done(self, step: Optional[int]) -> int:
        """Ends the pending step (written); the first time it was over the budget, sets :attr:`warning`. Returns its bytes."""
        layers, self._layers = self._layers, {}
        total = sum(layers.values())
        if self.max_bytes is None or total <= self.max_bytes or self.warned:
            return total
        self.warned = True
        biggest = sorted(layers.items(), key=lambda item: -item[1])[:3]
        named = ", ".join(f"{layer!r} ({byte_text(size)})" for layer, size in biggest)
        images = (
            ""
            if self.images_dropped
            else " From the next step on, the copies for TensorBoard's Images dashboard are left out (the Feature Maps panel shows everything still)."
        )
        self.images_dropped = True
        self.warning = (
            f"{self.owner}: step {step} logged {byte_text(total)}, over max_step_bytes={self.max_bytes} "
            f"({byte_text(self.max_bytes)}); the biggest layers: {named}.{images} "
            "The drawing chosen at the run's first step stays (a series never changes between steps). To log less per step, pass "
            "max_tile_size=, max_filters= or top_k= smaller, layers=[...] fewer, a smaller pool=, write_images=False; "
            "to allow more, raise max_step_bytes (None: no budget). This warning is not repeated."
        )
        return total


class SummaryWriter:
    """Appends feature-map summaries to one run directory.

    The event file is created on the first write (never for an idle writer) and
    each series gets its metadata with its first value. Writes are buffered until
    :meth:`flush`, which writes them whole or not at all.
    """

    def __init__(self, run_dir: str, budget: Optional[StepBudget] = None):
        self.run_dir = run_dir
        self.budget = budget if budget is not None else StepBudget(None)
        self._writer: Optional[EventFile] = None
        self._described: set[str] = set()
        self._step: Optional[int] = None

    def _add(self, step: int, values: list[summary_pb2.Summary.Value]) -> event_pb2.Event:
        if self._writer is None:
            self._writer = EventFile(self.run_dir)
        event = event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary_pb2.Summary(value=values))
        self._writer.add(event)
        return event

    def _value(self, tag: str, tensor, summary_metadata: summary_pb2.SummaryMetadata) -> summary_pb2.Summary.Value:
        value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
        if tag not in self._described:
            value.metadata.CopyFrom(summary_metadata)
            self._described.add(tag)
        return value

    def write_probes(self, step: int, pngs: Sequence[bytes], width: int, height: int, labels: list, input_shape: list):
        """Writes the probe inputs as images (the callback does so once per run, at its first step)."""
        tensor = _image_tensor(pngs, width, height)
        self._add(step, [self._value(metadata.PROBES_TAG, tensor, metadata.probes_metadata(labels, input_shape))])

    def write_pool(self, step: int, pngs: Sequence[bytes], width: int, height: int, labels: list, input_shape: list, input_range: list):
        """Writes the pool inputs' pictures (once per run, at its first step, with the probes)."""
        tensor = _image_tensor(pngs, width, height)
        self._add(step, [self._value(metadata.POOL_TAG, tensor, metadata.pool_metadata(labels, input_shape, input_range))])

    def write_layer(
        self,
        step: int,
        info: metadata.LayerInfo,
        pngs: Sequence[bytes],
        tensors: Optional[Mapping[str, np.ndarray]] = None,
        images_copy: Union[bool, str] = True,
        health: Optional[dict] = None,
    ) -> None:
        """Writes one layer's grids (one PNG per probe), its tensors and optional copies, as one event.

        Args:
            step: The step of every value written.
            info: The layer's constant description (becomes the series metadata).
            pngs: One grid PNG per probe, all ``info.layout`` sized.
            tensors: Tensor kind (``stats``, ``topk``, ``change``, ``responses``) → its value, stored as
                that kind stores it (``TensorKind.to_tensor``: float32, last axis its fields; responses float16).
            images_copy: Also write the grids for TensorBoard's Images dashboard:
                every probe's (``True``), the first probe's only (``"first"``) or none
                (``False``); none either once the step budget was exceeded.
            health: Scalars for the Scalars dashboard, ``{name: value}``.
        """
        layout = info.layout
        tensor = _image_tensor(pngs, layout.width, layout.height)
        grid = kinds.KINDS[info.kind]
        values = [self._value(grid.tag(info.layer), tensor, grid.metadata(info))]
        for name, array in (tensors or {}).items():
            kind = kinds.tensor_kind(name)
            values.append(self._value(kind.tag(info.layer), kind.to_tensor(array), kind.metadata(info.layer)))
        copies = [] if self.budget.images_dropped else images_copies(images_copy, pngs)
        if copies:
            tag = metadata.images_tag(info.kind, info.layer)
            shown = "one image per probe" if len(copies) == len(pngs) else "the first probe's image"
            description = f"{info.kind} of {metadata.markdown_text(info.layer)} ({metadata.markdown_text(info.layer_class)}), {shown}"
            copy = tensor if len(copies) == len(pngs) else _image_tensor(copies, layout.width, layout.height)
            values.append(self._value(tag, copy, image_metadata.create_summary_metadata(tag, description)))
        for name, number in (health or {}).items():
            tag = metadata.scalars_tag(name, info.layer)
            scalar = tensor_util.make_tensor_proto(np.float32(number))
            values.append(self._value(tag, scalar, scalar_metadata.create_summary_metadata(tag, "")))
        self.budget.add(info.layer, self._add(step, values).ByteSize())
        self._step = step

    def reopen_if_deleted(self) -> bool:
        """Starts a new event file when the current one was deleted (its run folder removed while logging); returns whether it did.

        Call it between steps: the next write makes the folder again and sends each series' metadata anew.
        """
        if self._writer is None or not self._writer.deleted():
            return False
        self.close()
        return True

    def flush(self) -> None:
        """Writes everything written since the last flush (the callback: one step), whole or not at all.

        Raises ``OSError`` when the event file could not take it (a full disk): the
        file is left as before the flush and those values are lost; the next
        flush sends each series' metadata again, in a new event file if the old one
        could not be cut back.
        """
        if self._writer is None:
            return
        try:
            self._writer.flush()
        except OSError:
            self.budget.clear()
            self._described.clear()  # the lost values may have carried a series' metadata
            if self._writer.closed:
                self._writer = None
            raise
        if self._writer.full:  # a bounded remote file: the next step starts a new one, with its series' metadata
            self._writer.close()
            self._writer = None
            self._described.clear()
        self.budget.step_done(self._step)

    def discard(self) -> None:
        """Drops everything written since the last flush: a step that failed part-way is never written in part."""
        if self._writer is not None:
            self._writer.discard()
        self.budget.clear()
        self._described.clear()  # the dropped values may have carried a series' metadata

    def close(self) -> None:
        """Flushes (see :meth:`flush`) and closes the event file; a later write opens a new one."""
        writer, self._writer = self._writer, None
        self._described.clear()
        self.budget.clear()
        if writer is not None:
            writer.close()
