"""The installed plugin inside a real ``tensorboard`` process, with both data loaders."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from helpers.logs import write_log
from helpers.tensorboard import DEADLINE, LOADERS, TensorBoard, fetch, fetch_json, running

STEPS = 25


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("tensorboard")
    write_log(directory / "run", layers=("conv",), steps=range(STEPS))
    return str(directory)


CONFIGURATIONS = [(load_fast, samples) for load_fast in LOADERS for samples in (None, 5)]


@pytest.fixture(scope="module")
def servers(logdir) -> Iterator[dict[tuple, TensorBoard]]:
    """One TensorBoard per configuration, all started at once (each takes seconds to start)."""
    flags = {
        (load_fast, samples): ["--load_fast", load_fast] + (["--samples_per_plugin", f"feature_maps={samples}"] if samples else [])
        for load_fast, samples in CONFIGURATIONS
    }
    with running(logdir, flags) as started:
        yield started


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
