"""Logs the two data loaders read differently: names the Rust data server cannot read back.

Checked in a real ``tensorboard`` per loader (``--load_fast=true`` and ``false``).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_plugin_routes import write_log
from test_tensorboard_process import DEADLINE, TensorBoard, stop

from tb_featuremaps import metadata

LOADERS = ("true", "false")  # --load_fast: the Rust data server, the Python loader
ROUTES = "/data/plugin/feature_maps/"

# Names the Rust data server cannot read back ----------------------------------------------------

ODD_RUNS = ['a"b', "a\\b"]
ODD_LAYER = 'q"u\\o\tt'
NAMES_RUN = "layers"  # layers "conv" and ODD_LAYER
ALL_RUNS = sorted(["good", NAMES_RUN, *ODD_RUNS])
UNREADABLE = [  # (route, run, query): what the Rust data server cannot read
    *[("grid", run, {"layer": "conv", "step": 1}) for run in ODD_RUNS],
    *[("probe", run, {"index": 0}) for run in ODD_RUNS],
    ("grid", NAMES_RUN, {"layer": ODD_LAYER, "step": 1}),
]


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("odd")
    write_log(path / "good", steps=[0, 1])
    for run in ODD_RUNS:
        write_log(path / run, steps=[0, 1])
    write_log(path / NAMES_RUN, layers=("conv", ODD_LAYER), steps=[0, 1])
    return path


@pytest.fixture(scope="module")
def servers(logs) -> Iterator[dict[str, str]]:
    """``{load_fast: TensorBoard's base URL}``, both TensorBoards started at once."""
    started = {load_fast: TensorBoard(str(logs), ["--load_fast", load_fast]) for load_fast in LOADERS}
    try:
        yield {load_fast: server.url() for load_fast, server in started.items()}
    finally:
        stop(started.values())


Get = Callable[..., tuple[int, str, bytes]]
"""``get(route, **query)``: the route's status, content type and body."""


def http_get(root: str) -> Get:
    def answer(route: str, **query) -> tuple[int, str, bytes]:
        url = root + ROUTES + route + ("?" + urllib.parse.urlencode(query) if query else "")
        try:
            with urllib.request.urlopen(url, timeout=20) as response:
                return response.status, response.headers.get_content_type(), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get_content_type(), error.read()

    return answer


def get_json(get_: Get, route: str, **query):
    status, content_type, body = get_(route, **query)
    assert (status, content_type) == (200, "application/json"), (route, query, status, body)
    return json.loads(body)


def loaded(get_: Get) -> dict:
    """The ``runs`` answer once the loader has read every run in full."""
    deadline = time.monotonic() + DEADLINE
    while True:
        answer = get_json(get_, "runs")
        runs = {entry["run"]: entry for entry in answer["runs"]}
        listed = set(runs) | {error["run"] for error in answer.get("errors", [])}
        last = {run: [layer["last_step"] for layer in entry["layers"]] for run, entry in runs.items()}
        complete = all(steps and set(steps) == {1} for steps in last.values())
        if listed == set(ALL_RUNS) and complete:
            return answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.3)


def test_unreadable_names_fail_alone(servers):
    """Under the Rust data server, runs and layers named with ``"``, ``\\`` or a tab are reported in ``errors``; the rest is served."""
    for load_fast, root in servers.items():
        get_ = http_get(root)
        answer = loaded(get_)
        runs = {entry["run"]: entry for entry in answer["runs"]}
        layers = {run: [layer["layer"] for layer in entry["layers"]] for run, entry in runs.items()}
        if load_fast == "false":  # the Python loader reads every name
            assert answer["errors"] == []
            assert sorted(runs) == ALL_RUNS and layers[NAMES_RUN] == ["conv", ODD_LAYER]
        else:
            assert [(error["run"], error["tag"]) for error in answer["errors"]] == [
                (ODD_RUNS[0], None),
                (ODD_RUNS[1], None),
                (NAMES_RUN, metadata.tag_for(metadata.KIND_ACTIVATIONS, ODD_LAYER)),
            ]
            assert all(set(error) == {"run", "tag", "error"} for error in answer["errors"])
            assert all("--load_fast=false" in error["error"] and len(error["error"]) < 200 for error in answer["errors"])
            assert sorted(runs) == ["good", NAMES_RUN] and layers[NAMES_RUN] == ["conv"]
            for route, run, query in UNREADABLE:
                status, content_type, body = get_(route, run=run, **query)
                assert (status, content_type) == (400, "text/plain"), (route, run, body)
                assert b"--load_fast=false" in body and len(body) < 300, body
        for run, layer in [("good", "conv"), (NAMES_RUN, "conv")]:
            assert runs[run]["probes"]["count"] == 3
            assert get_json(get_, "steps", run=run, layer=layer)["steps"] == [0, 1]
            assert get_("grid", run=run, layer=layer, step=1, probe=2)[:2] == (200, "image/png")
            assert get_json(get_, "stats", run=run, layer=layer, step=1)["step"] == 1
            assert get_json(get_, "activity", run=run, layer=layer)["steps"] == [0, 1]
            assert get_("probe", run=run, index=2)[:2] == (200, "image/png")
        for run, layer in [(ODD_RUNS[0], "conv"), (ODD_RUNS[1], "conv"), (NAMES_RUN, ODD_LAYER)]:  # whatever fails, fails with a reason
            for route, query in [("steps", {}), ("stats", {"step": 1}), ("filter_stats", {"filter": 0}), ("activity", {})]:
                status, content_type, body = get_(route, run=run, layer=layer, **query)
                assert status == 200 or (400 <= status < 500 and content_type == "text/plain"), (route, run, status, body)
