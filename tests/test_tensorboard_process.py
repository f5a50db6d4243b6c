"""The installed plugin inside a real ``tensorboard`` process, with both data loaders."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator

import pytest
from test_plugin_routes import write_log

STEPS = 25
DEADLINE = 60.0
_URL = re.compile(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+)/")


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("tensorboard")
    write_log(directory / "run", layers=("conv",), steps=range(STEPS))
    return str(directory)


class TensorBoard:
    """A ``tensorboard --logdir logdir --port 0 flags...`` process; its stderr is drained in a thread."""

    def __init__(self, logdir: str, flags: list[str]):
        command = [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            logdir,
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--reload_interval",
            "1",
            *flags,
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._started = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:  # keeps the pipe from filling up, and spots the URL line
        for line in self.process.stderr:
            self.lines.append(line)
            if _URL.search(line):
                self._started.set()

    def url(self) -> str:
        """The base URL, once TensorBoard says it serves."""
        if not self._started.wait(DEADLINE):
            raise AssertionError("tensorboard did not start:\n" + "".join(self.lines[-30:]))
        return next(match.group(1) for match in map(_URL.search, self.lines) if match)

    def reap(self, timeout: float = 15) -> None:
        """Waits for the terminated process, killing it after ``timeout`` seconds."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def stop(servers: Iterable[TensorBoard]) -> None:
    """Terminates every process first, then reaps each (so they shut down side by side)."""
    servers = list(servers)
    for server in servers:
        server.process.terminate()
    for server in servers:
        server.reap()


CONFIGURATIONS = [(load_fast, samples) for load_fast in ("true", "false") for samples in (None, 5)]


@pytest.fixture(scope="module")
def servers(logdir) -> Iterator[dict]:
    """One TensorBoard per configuration, all started at once (each takes seconds to start)."""
    started = {}
    try:
        for load_fast, samples in CONFIGURATIONS:
            flags = ["--load_fast", load_fast] + (["--samples_per_plugin", f"feature_maps={samples}"] if samples else [])
            started[load_fast, samples] = TensorBoard(logdir, flags)
        yield started
    finally:
        stop(started.values())


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def fetch_json(url: str):
    status, body = fetch(url)
    assert status == 200, (url, status, body)
    return json.loads(body)


def wait_for_last_step(base: str) -> dict:
    """Polls the ``runs`` route until the run's layer reports the last written step (loading is asynchronous)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        runs = fetch_json(base + "/data/plugin/feature_maps/runs")["runs"]
        layers = runs[0]["layers"] if runs else []
        if layers and layers[0]["last_step"] == STEPS - 1:
            return runs[0]
        assert time.monotonic() < deadline, f"TensorBoard never served step {STEPS - 1}: {runs}"
        time.sleep(0.5)


@pytest.mark.parametrize(("load_fast", "samples"), CONFIGURATIONS)
def test_tensorboard_serves_the_panel(servers, load_fast, samples):
    base = servers[load_fast, samples].url()
    run = wait_for_last_step(base)
    plugins = fetch_json(base + "/data/plugins_listing")
    assert plugins["feature_maps"]["enabled"] is True
    assert plugins["feature_maps"]["tab_name"] == "Feature Maps"
    assert run["run"] == "run" and run["probes"]["count"] == 3
    steps = fetch_json(base + "/data/plugin/feature_maps/steps?run=run&layer=conv")["steps"]
    if samples is None:
        assert steps == list(range(STEPS))  # more than the 10 TensorBoard keeps for unknown plugins
    else:
        assert len(steps) <= samples and steps[-1] == STEPS - 1
    status, png = fetch(f"{base}/data/plugin/feature_maps/grid?run=run&layer=conv&step={steps[-1]}&probe=2")
    assert (status, png[:8]) == (200, b"\x89PNG\r\n\x1a\n")
    assert fetch(base + "/data/plugin/feature_maps/grid?run=run&layer=conv&step=-1")[0] == 400
    assert fetch(base + "/data/plugin/feature_maps/probe?run=run&index=3")[0] == 404
    assert fetch(base + "/data/plugin/feature_maps/static/..%2f..%2fplugin.py")[0] == 404
    status, module = fetch(base + "/data/plugin/feature_maps/index.js")
    assert status == 200 and b"export function render" in module
    assert len(fetch_json(base + "/data/plugin/feature_maps/activity?run=run&layer=conv")["steps"]) == len(steps)
