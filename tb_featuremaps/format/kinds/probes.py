"""``probes``: the probe inputs' pictures, one series per run, written once at its first logged step."""

from __future__ import annotations

from tensorboard.compat.proto import summary_pb2

from ..content import FORMAT_VERSION, summary_metadata
from .base import PicturesKind

NAME = "probes"

KIND = PicturesKind(NAME, "the probe inputs' pictures, one PNG per probe, written once at the run's first logged step")


def probes_metadata(labels: list, input_shape: list) -> summary_pb2.SummaryMetadata:
    """Metadata of the ``probes`` series (blob sequence of the probe inputs)."""
    content = {"version": FORMAT_VERSION, "kind": NAME, "labels": list(labels), "input_shape": list(input_shape)}
    return summary_metadata(content, summary_pb2.DATA_CLASS_BLOB_SEQUENCE, "probe inputs")
