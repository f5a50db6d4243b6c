"""A real ``tensorboard`` process on a free port of 127.0.0.1, and HTTP requests to it.

The one launcher of the tests and the benchmarks (``benchmarks/serving.py`` and
``benchmarks/browser.py`` import it): it needs only the standard library.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Callable, Optional, TypeVar

DEADLINE = 60.0
"""Seconds the tests wait for TensorBoard to start, or to serve what was written."""
LOADERS = ("true", "false")
"""The ``--load_fast`` values: the Rust data server, the Python loader."""
_URL = re.compile(r"TensorBoard \S+ at (http://127\.0\.0\.1:(\d+))/")
Key = TypeVar("Key")


class TensorBoard:
    """A ``tensorboard --logdir logdir --host 127.0.0.1 --port 0 [--reload_interval N] flags...`` process.

    Starting does not wait (several start side by side): :meth:`url` waits until it
    serves. Its stderr is drained in a thread, which also spots the URL line.

    Args:
        logdir: The logdir it serves.
        flags: More command-line flags, e.g. ``["--load_fast", "false"]``.
        reload_interval: Seconds between its reloads of the logdir (the tests' 1);
            None leaves TensorBoard's default (the benchmarks measure with it).
        python: The Python that runs it (another environment's, e.g. a venv's).
    """

    def __init__(self, logdir: str, flags: Sequence[str] = (), reload_interval: Optional[float] = 1, python: str = sys.executable):
        self.started = time.perf_counter()
        command = [python, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0"]
        if reload_interval is not None:
            command += ["--reload_interval", str(reload_interval)]
        self.process = subprocess.Popen([*command, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.port = 0
        self._url = ""
        self._serving = threading.Event()
        self._connection: Optional[http.client.HTTPConnection] = None
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:  # keeps the pipe from filling up, and spots the URL line
        for line in self.process.stderr:
            self.lines.append(line)
            match = _URL.search(line)
            if match and not self._serving.is_set():
                self._url, self.port = match.group(1), int(match.group(2))
                self._serving.set()

    def url(self, timeout: float = DEADLINE) -> str:
        """The base URL (``http://127.0.0.1:PORT``), once TensorBoard says it serves."""
        if not self._serving.wait(timeout):
            raise AssertionError("tensorboard did not start:\n" + "".join(self.lines[-30:]))
        return self._url

    def seconds_since_start(self) -> float:
        return time.perf_counter() - self.started

    def check_alive(self) -> None:
        """Raises, with its last output, if TensorBoard has exited."""
        if self.process.poll() is not None:
            raise RuntimeError(f"TensorBoard exited with status {self.process.returncode}:\n" + "".join(self.lines[-20:]))

    # Requests over one keep-alive connection (the benchmarks time them) ------------------------

    def get(self, path: str) -> tuple[int, bytes]:
        """Status and body of a GET of ``path``; a dropped keep-alive connection is reopened once."""
        try:
            return self._get(path)
        except (ConnectionError, http.client.HTTPException):
            self._connection.close()
            self._connection = None
            return self._get(path)

    def _get(self, path: str) -> tuple[int, bytes]:
        if self._connection is None:
            self.url()
            self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self._connection.request("GET", path)
        response = self._connection.getresponse()
        return response.status, response.read()

    def ok(self, path: str) -> bytes:
        """The body of a GET that must answer 200."""
        status, body = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body[:200]!r}")
        return body

    def json(self, path: str) -> Any:
        return json.loads(self.ok(path))

    # Stopping ------------------------------------------------------------------------------------

    def terminate(self) -> None:
        """Closes the keep-alive connection and asks the process to end (:meth:`reap` waits for it)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.process.terminate()

    def reap(self, timeout: float = 15) -> None:
        """Waits for the terminated process, killing it after ``timeout`` seconds."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        """Terminates and reaps the process."""
        stop([self])


def stop(servers: Iterable[TensorBoard]) -> None:
    """Terminates every process first, then reaps each (so they shut down side by side)."""
    servers = list(servers)
    for server in servers:
        server.terminate()
    for server in servers:
        server.reap()


@contextmanager
def running(logdir, flags: Mapping[Key, Sequence[str]]) -> Iterator[dict[Key, TensorBoard]]:
    """``{key: TensorBoard(logdir, flags[key])}``, all started at once (each takes seconds to start), stopped on exit."""
    started: dict = {}
    try:
        for key, server_flags in flags.items():
            started[key] = TensorBoard(str(logdir), server_flags)
        yield started
    finally:
        stop(started.values())


@contextmanager
def each_loader(logdir) -> Iterator[dict[str, str]]:
    """``{load_fast: base URL}`` of a TensorBoard per data loader (:data:`LOADERS`) over ``logdir``, started at once."""
    with running(logdir, {load_fast: ["--load_fast", load_fast] for load_fast in LOADERS}) as started:
        yield {load_fast: server.url() for load_fast, server in started.items()}


@contextmanager
def serving(logdir, flags: Sequence[str], runs: int) -> Iterator[str]:
    """A TensorBoard over ``logdir``, once its plugin lists ``runs`` runs; yields its base URL, stops it on exit."""
    with running(logdir, {None: flags}) as started:
        base = started[None].url()
        poll(lambda: len(fetch_json(base + "/data/plugin/feature_maps/runs")["runs"]) >= runs, "TensorBoard to load the runs", interval=0.5)
        yield base


# Requests on a new connection each -----------------------------------------------------------


def request(url: str) -> tuple[int, str, bytes]:
    """Status, content type and body of a GET of ``url`` (an HTTP error is an answer too)."""
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), error.read()


def fetch(url: str) -> tuple[int, bytes]:
    """Status and body of a GET of ``url``."""
    status, _, body = request(url)
    return status, body


def fetch_json(url: str):
    """The JSON a GET of ``url`` answers with status 200."""
    status, body = fetch(url)
    assert status == 200, (url, status, body)
    return json.loads(body)


Result = TypeVar("Result")


def poll(check: Callable[[], Result], what: str, timeout: float = DEADLINE, interval: float = 0.1) -> Result:
    """Calls ``check()`` until it returns a true value, which it returns; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)
    return result
