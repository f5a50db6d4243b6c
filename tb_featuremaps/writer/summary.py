"""Writes feature-map summaries to an event file in the format of :mod:`.metadata`.

Writes event files with :mod:`.eventfile` (no TensorFlow needed), so the
callback writes the same files whichever Keras backend trains the model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Optional

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.util import tensor_util

from ..format import metadata
from ..format.eventfile import EventFile


def _image_tensor(pngs: Sequence[bytes], width: int, height: int):
    """The tensor of an image value (:func:`metadata.image_value`)."""
    return tensor_util.make_tensor_proto(np.array(metadata.image_value(pngs, width, height), dtype=object))


class SummaryWriter:
    """Appends feature-map summaries to one run directory.

    The event file is created on the first write (never for an idle writer) and
    each series gets its metadata with its first value. Writes are buffered until
    :meth:`flush`, which writes them whole or not at all.
    """

    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self._writer: Optional[EventFile] = None
        self._described: set[str] = set()

    def _add(self, step: int, values: list[summary_pb2.Summary.Value]) -> None:
        if self._writer is None:
            self._writer = EventFile(self.run_dir)
        event = event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary_pb2.Summary(value=values))
        self._writer.add(event)

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

    def write_layer(
        self,
        step: int,
        info: metadata.LayerInfo,
        pngs: Sequence[bytes],
        stats: Optional[np.ndarray] = None,
        images_copy: bool = True,
        health: Optional[dict] = None,
    ) -> None:
        """Writes one layer's grids (one PNG per probe), its stats and optional copies.

        Args:
            step: The step of every value written.
            info: The layer's constant description (becomes the series metadata).
            pngs: One grid PNG per probe, all ``info.layout`` sized.
            stats: float32 ``[probes, filters, len(STATS_FIELDS)]`` or None.
            images_copy: Also write the grids for TensorBoard's Images dashboard.
            health: Scalars for the Scalars dashboard, ``{name: value}``.
        """
        layout = info.layout
        tensor = _image_tensor(pngs, layout.width, layout.height)
        values = [self._value(metadata.tag_for(info.kind, info.layer), tensor, metadata.grid_metadata(info))]
        if stats is not None:
            stats_tensor = tensor_util.make_tensor_proto(np.asarray(stats, dtype=np.float32))
            values.append(self._value(metadata.tag_for(metadata.KIND_STATS, info.layer), stats_tensor, metadata.stats_metadata(info.layer)))
        if images_copy:
            tag = metadata.images_tag(info.kind, info.layer)
            description = f"{info.kind} of {metadata.markdown_text(info.layer)} ({metadata.markdown_text(info.layer_class)}), one image per probe"
            values.append(self._value(tag, tensor, image_metadata.create_summary_metadata(tag, description)))
        for name, number in (health or {}).items():
            tag = metadata.scalars_tag(name, info.layer)
            scalar = tensor_util.make_tensor_proto(np.float32(number))
            values.append(self._value(tag, scalar, scalar_metadata.create_summary_metadata(tag, "")))
        self._add(step, values)

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
            self._described.clear()  # the lost values may have carried a series' metadata
            if self._writer.closed:
                self._writer = None
            raise

    def discard(self) -> None:
        """Drops everything written since the last flush: a step that failed part-way is never written in part."""
        if self._writer is not None:
            self._writer.discard()
        self._described.clear()  # the dropped values may have carried a series' metadata

    def close(self) -> None:
        """Flushes (see :meth:`flush`) and closes the event file; a later write opens a new one."""
        writer, self._writer = self._writer, None
        self._described.clear()
        if writer is not None:
            writer.close()
