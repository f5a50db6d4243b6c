"""Logs the two data loaders read differently: steps written twice into one run, names the Rust data server cannot read back.

Checked in-process (the Python loader) and in a real ``tensorboard`` per loader (``--load_fast=true`` and ``false``).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers.logs import log_writer, move_event_file, write_log, write_step
from helpers.plugin import finite, get, make_client
from helpers.tensorboard import DEADLINE, each_loader, request

from tb_featuremaps import render
from tb_featuremaps.format import metadata
from tb_featuremaps.writer.probes import probe_image

ROUTES = "/data/plugin/feature_maps/"
LABELS = ["a", "b"]
MEAN = metadata.STATS_FIELDS.index("mean")

# Steps written twice -------------------------------------------------------------------------------

FIRST_STEPS, SECOND_STEPS = range(3), range(4)  # a training of 3 steps, then one of 4 into the same run
SERVED = {
    # What each loader keeps of run "dup": {step: training (0: first, 1: second)}.
    "false": {0: 0, 1: 0, 2: 0, 3: 1},  # every event; its data provider serves the first-read grid of a step
    "true": {0: 1, 1: 1, 2: 1, 3: 1},  # a step at or below the last one read drops the earlier data from that step on
}

# Names the Rust data server cannot read back ----------------------------------------------------

ODD_RUNS = ['a"b', "a\\b"]
ODD_LAYER = 'q"u\\o\tt'
NAMES_RUN = "layers"  # layers "conv" and ODD_LAYER
ALL_RUNS = sorted(["dup", "good", NAMES_RUN, *ODD_RUNS])
UNREADABLE = [  # (route, run, query): what the Rust data server cannot read
    *[("grid", run, {"layer": "conv", "step": 1}) for run in ODD_RUNS],
    *[("probe", run, {"index": 0}) for run in ODD_RUNS],
    ("grid", NAMES_RUN, {"layer": ODD_LAYER, "step": 1}),
]


@dataclass(frozen=True)
class Training:
    """What one training wrote into run ``dup``: per step its grid PNGs and stats, and its probe pictures."""

    grids: dict[int, list[bytes]]
    stats: dict[int, np.ndarray]
    probes: list[bytes]


def write_training(run_dir: Path, staging: Path, file_name: str, seed: int, steps: range) -> Training:
    """Writes one training of layer ``conv`` as the event file ``run_dir/file_name`` (loaders read a run's files in name order)."""
    rng = np.random.default_rng(seed)
    pictures = rng.integers(0, 256, (len(LABELS), 8, 8, 1), dtype=np.uint8)
    grids, stats = {}, {}
    with log_writer(staging, LABELS, pictures) as writer:
        for step in steps:
            maps = rng.normal(size=(len(LABELS), 5, 5, 3)).astype(np.float32)
            drawn = render.draw(maps)
            stats[step] = drawn.stats
            grids[step] = render.to_pngs(drawn, drawn.layout())
            write_step(writer, step, {"conv": maps})
    move_event_file(staging, run_dir, file_name)
    return Training(grids, stats, [render.encode_png(probe_image(picture)) for picture in pictures])


@dataclass(frozen=True)
class Logs:
    path: Path
    trainings: tuple[Training, Training]


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Logs:
    path = tmp_path_factory.mktemp("odd")
    trainings = tuple(
        write_training(path / "dup", tmp_path_factory.mktemp("staging"), f"events.out.tfevents.000000000{index}.training", index, steps)
        for index, steps in enumerate((FIRST_STEPS, SECOND_STEPS))
    )
    write_log(path / "good", steps=[0, 1])
    for run in ODD_RUNS:
        write_log(path / run, steps=[0, 1])
    write_log(path / NAMES_RUN, layers=("conv", ODD_LAYER), steps=[0, 1])
    return Logs(path, trainings)


@pytest.fixture(scope="module")
def servers(logs) -> Iterator[dict[str, str]]:
    """``{load_fast: TensorBoard's base URL}``, both TensorBoards started at once."""
    with each_loader(logs.path) as urls:
        yield urls


Get = Callable[..., tuple[int, str, bytes]]
"""``get(route, **query)``: the route's status, content type and body."""


def client_get(client) -> Get:
    def answer(route: str, **query) -> tuple[int, str, bytes]:
        response = get(client, route, **query)
        return response.status_code, response.mimetype, response.data

    return answer


def http_get(root: str) -> Get:
    def answer(route: str, **query) -> tuple[int, str, bytes]:
        return request(root + ROUTES + route + ("?" + urllib.parse.urlencode(query) if query else ""))

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
        complete = all(steps == [SECOND_STEPS[-1]] if run == "dup" else steps and set(steps) == {1} for run, steps in last.items())
        if listed == set(ALL_RUNS) and complete:
            return answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.3)


def check_duplicated_steps(get_: Get, trainings: tuple[Training, Training], served: dict[int, int]) -> None:
    """Every route serves the steps of ``served`` once each, in order, each step's grid and stats from the same training."""
    steps = sorted(served)
    (layer,) = next(entry for entry in loaded(get_)["runs"] if entry["run"] == "dup")["layers"]
    assert (layer["step_count"], layer["first_step"], layer["last_step"]) == (len(steps), steps[0], steps[-1])
    assert get_json(get_, "steps", run="dup", layer="conv")["steps"] == steps
    for step, training in served.items():
        for probe in range(len(LABELS)):
            status, content_type, png = get_("grid", run="dup", layer="conv", step=step, probe=probe)
            assert (status, content_type) == (200, "image/png")
            assert png == trainings[training].grids[step][probe], f"grid at step {step} is not from training {training}"
        values = finite(get_json(get_, "stats", run="dup", layer="conv", step=step)["values"])
        np.testing.assert_allclose(values, trainings[training].stats[step], rtol=1e-6, err_msg=f"stats at step {step}")
    expected = np.stack([trainings[served[step]].stats[step] for step in steps])
    answer = get_json(get_, "filter_stats", run="dup", layer="conv", filter=1)
    assert answer["steps"] == steps
    np.testing.assert_allclose(finite(answer["values"]), expected[:, :, 1, :], rtol=1e-6)
    answer = get_json(get_, "activity", run="dup", layer="conv")
    assert answer["steps"] == steps
    np.testing.assert_allclose(finite(answer["mean"]), expected[..., MEAN].mean(axis=1), rtol=1e-5)
    # Each training logs its probes at step 0: they come from the training step 0 comes from.
    assert get_("probe", run="dup", index=1)[2] == trainings[served[0]].probes[1]


def test_duplicated_steps_in_process(logs):
    """The Python loader's provider: stats at a step written twice come from the event its grid comes from."""
    check_duplicated_steps(client_get(make_client(logs.path)), logs.trainings, SERVED["false"])


def test_duplicated_steps_in_tensorboard(servers, logs):
    for load_fast, root in servers.items():
        check_duplicated_steps(http_get(root), logs.trainings, SERVED[load_fast])


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
            assert sorted(runs) == ["dup", "good", NAMES_RUN] and layers[NAMES_RUN] == ["conv"]
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
