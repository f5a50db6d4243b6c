"""Scripts in a new Python process that can import these helpers (``from helpers.models import ...``)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Optional

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


def run_script(script: str, *args: str, env: Optional[dict[str, str]] = None, timeout: float = 300, cwd: Optional[Path] = None) -> str:
    """Runs ``script`` in a new Python process (``env``: :func:`script_env` by default), asserts it succeeded; returns its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=script_env() if env is None else env, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def run_on_backend(backend: str, script: str, *args: str, scratch: Path) -> str:
    """Runs ``script`` (which may import from ``helpers``) in a new process on Keras ``backend``; returns its output.

    TensorFlow is made unimportable there unless it is the backend (:func:`hiding`, as a
    ``sitecustomize`` in ``scratch``), so nothing on the write path may need it.
    """
    paths = []
    if backend != "tensorflow":
        hidden = scratch / "no_tensorflow"
        hidden.mkdir(parents=True, exist_ok=True)
        (hidden / "sitecustomize.py").write_text(hiding("tensorflow"))
        paths.append(hidden)
    return run_script(script, *args, env=script_env(*paths, KERAS_BACKEND=backend))


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


def hiding(*packages: str) -> str:
    """Python source (a ``sitecustomize.py``, or a script's first lines) under which ``packages`` look not installed.

    Every import finder is wrapped so that it finds nothing of them: importing one raises
    ``ModuleNotFoundError`` and ``importlib.util.find_spec`` returns None, as where they are
    not installed (torch, for one, asks ``find_spec("tensorflow")`` and takes None for "no").
    """
    return f"""
import sys

class Missing:
    "{", ".join(packages)}: not installed."
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {packages!r}:
            return None
        return self.finder.find_spec(name, path, target)
    def __getattr__(self, name):
        return getattr(self.finder, name)

sys.meta_path[:] = [Missing(finder) for finder in sys.meta_path]
"""


NO_TENSORFLOW = hiding("tensorflow", "keras")
"""Where neither TensorFlow nor Keras is installed (see :func:`hiding`)."""
