"""Scripts in a new Python process that can import these helpers (``from helpers.models import ...``)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
"""The tests folder: on a script's ``PYTHONPATH``, so that it can import ``helpers``."""


def script_env(*paths, **variables: str) -> dict[str, str]:
    """``os.environ`` with ``variables`` set and ``paths``, then the tests folder, first on ``PYTHONPATH``."""
    path = [*map(str, paths), str(TESTS), os.environ.get("PYTHONPATH")]
    return {**os.environ, **variables, "PYTHONPATH": os.pathsep.join(filter(None, path))}


def skip_without_backend(backend: str) -> None:
    """Skips the test when Keras backend ``backend`` (``jax``, ``torch``) is not installed."""
    if importlib.util.find_spec(backend) is None:
        import pytest

        pytest.skip(f"Keras backend {backend!r} is not installed (pip install {backend})")


def run_on_backend(backend: str, script: str, *args: str, scratch: Path) -> str:
    """Runs ``script`` (which may import from ``helpers``) in a new process on Keras ``backend``; returns its output.

    TensorFlow is made unimportable there unless it is the backend, so nothing on the write path may need it.
    """
    paths = []
    if backend != "tensorflow":
        hidden = scratch / "no_tensorflow" / "tensorflow"
        hidden.mkdir(parents=True, exist_ok=True)
        (hidden / "__init__.py").write_text('raise ImportError("TensorFlow is hidden from this test")\n')
        paths.append(hidden.parent)
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=script_env(*paths, KERAS_BACKEND=backend), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def finish(processes: list[subprocess.Popen], timeout: float) -> list[str]:
    """Waits for every process (killing all after ``timeout`` s: a hang fails the test) and asserts each succeeded; returns their output."""
    import pytest

    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=timeout)[0])
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        pytest.fail(f"a process hung for {timeout} s")
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-4000:]
    return outputs


def free_ports(count: int) -> list[int]:
    """``count`` distinct local TCP ports free at the time of the call."""
    sockets = [socket.socket() for _ in range(count)]
    for item in sockets:
        item.bind(("localhost", 0))
    ports = [item.getsockname()[1] for item in sockets]
    for item in sockets:
        item.close()
    return ports


NO_TENSORFLOW = """
import sys

class Missing:
    "TensorFlow is not installed."
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing())
"""
"""A ``sitecustomize.py`` (or script prefix) under which importing TensorFlow or Keras fails, as where neither is installed."""
