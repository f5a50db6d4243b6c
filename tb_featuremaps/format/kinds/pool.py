"""``pool``: the pool inputs' pictures (the ``strongest`` patches' sources), one series per run, written once."""

from __future__ import annotations

from tensorboard.compat.proto import summary_pb2

from ..content import FORMAT_VERSION, summary_metadata
from .base import PicturesKind

NAME = "pool"

KIND = PicturesKind(
    NAME, "the pool inputs' pictures, one PNG per pool input in the strongest patches' levels, written once at the run's first logged step"
)


def pool_metadata(labels: list, input_shape: list, input_range: list) -> summary_pb2.SummaryMetadata:
    """Metadata of the ``pool`` series (blob sequence of the pool inputs' pictures, ``strongest``' sources)."""
    content = {
        "version": FORMAT_VERSION,
        "kind": NAME,
        "labels": list(labels),
        "input_shape": list(input_shape),
        "input_range": list(input_range),
    }
    return summary_metadata(content, summary_pb2.DATA_CLASS_BLOB_SEQUENCE, "pool inputs")
