"""Drops TensorFlow's start-up chatter from stderr; every other line passes through unchanged.

TensorFlow's native code logs through absl before ``TF_CPP_MIN_LOG_LEVEL`` takes
effect, so that variable alone cannot silence it. On a machine without an NVIDIA
driver, the CUDA probing messages (``cuInit`` failing, no CUDA drivers) are
expected and dropped too; where a driver is present they are real errors and pass.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

_STARTUP_NOISE = (
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"[IW]\d{4} .*port\.cc:\d+\] oneDNN custom operations are on.*",
    r"[IW]\d{4} .*cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.",
)
_NO_GPU_NOISE = (
    r"[IWE]\d{4} .*cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used\.",
    r"E\d{4} .*cuda_platform\.cc:\d+\] failed call to cuInit: .*",
    r"E\d{4} .*cuda_(fft|dnn|blas)\.cc:\d+\] Unable to register cu(FFT|DNN|BLAS) factory: .*",
    r"W\d{4} .*computation_placer\.cc:\d+\] computation placer already registered.*",
)


def _noise() -> re.Pattern:
    patterns = _STARTUP_NOISE + (() if os.path.exists("/proc/driver/nvidia") else _NO_GPU_NOISE)
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns))


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """While active, stderr (file descriptor 2, native code included) goes through a filter of known chatter."""
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    noise = _noise()
    target_fd = os.dup(original)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as pipe, os.fdopen(target_fd, "wb", buffering=0) as target:
            for line in pipe:
                if not noise.fullmatch(line.decode("utf-8", "replace").rstrip("\r\n")):
                    target.write(line)

    thread = threading.Thread(target=forward, name="stderr_filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end: the filter sees the end and stops
        os.close(original)
        thread.join(timeout=5)
