"""Logs that change under a running TensorBoard, and logs that are broken or hostile.

A real ``tensorboard`` per data loader (``--load_fast=true`` and ``false``, ``--reload_interval 1``)
reads one logdir of 100 small runs plus a run that a writer keeps appending to, a run whose last
record is cut off, and a run that is deleted. Races and malformed series are checked in-process.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from helpers.logs import log_writer, step_maps, write_log, write_step
from helpers.plugin import get, get_json, make_client, multiplexer_for
from helpers.tensorboard import DEADLINE, each_loader, fetch, fetch_json, poll
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.util import tensor_util

from tb_featuremaps import FeatureMapsWriter, render
from tb_featuremaps.format import metadata
from tb_featuremaps.format.eventfile import EventFile
from tb_featuremaps.plugin.series import FRESH_SECONDS

MANY = 100
CUT_BYTES = 10
PNG = b"\x89PNG\r\n\x1a\n"
ROUTES = "/data/plugin/feature_maps/"


@dataclass
class Logs:
    """The shared logdir and the handles the tests change it through."""

    path: Path
    live: FeatureMapsWriter  # run "live": steps 0..2 so far, the writer still open
    cut_file: Path  # run "cut": steps 0..4, the last record's last bytes missing
    cut_tail: bytes


def log_step(writer: FeatureMapsWriter, step: int) -> None:
    """Logs (and flushes) one step of layer ``conv`` (4 filters, 2 probes), as the callback does after an epoch."""
    write_step(writer, step, {"conv": step_maps(step)})


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Iterator[Logs]:
    path = tmp_path_factory.mktemp("live")
    for index in range(MANY):
        write_log(path / f"many_{index:03d}", steps=[0, 1])
    write_log(path / "doomed", steps=range(3))
    write_log(path / "cut", steps=range(5))
    (cut_file,) = (path / "cut").iterdir()
    data = cut_file.read_bytes()
    cut_file.write_bytes(data[:-CUT_BYTES])
    live = log_writer(path / "live")
    for step in range(3):
        log_step(live, step)
    yield Logs(path, live, cut_file, data[-CUT_BYTES:])
    live.close()


@pytest.fixture(scope="module")
def servers(logs) -> Iterator[dict[str, str]]:
    """``{load_fast: TensorBoard's base URL}``, both TensorBoards started at once."""
    with each_loader(logs.path) as urls:
        yield urls


def run_entry(base: str, run: str) -> Optional[dict]:
    """The run's entry in the ``runs`` listing, or None."""
    return next((entry for entry in fetch_json(base + "runs")["runs"] if entry["run"] == run), None)


def last_step(base: str, run: str) -> Optional[int]:
    """The last step of the run's first layer in the ``runs`` listing, or None."""
    entry = run_entry(base, run)
    return entry["layers"][0]["last_step"] if entry and entry["layers"] else None


def status(base: str, route: str) -> int:
    """The route's HTTP status, which must be 200 or 404."""
    code = fetch(base + route)[0]
    assert code in (200, 404), (base, route, code)
    return code


def test_hundred_runs_are_listed_quickly(servers):
    """First in the module, so that its first listing reads every run (cold)."""
    for load_fast, root in servers.items():
        poll(lambda root=root: len(fetch_json(root + "/data/runs")) >= MANY + 3, "TensorBoard to find the runs")
        base = root + ROUTES
        timings = []
        while True:
            started = time.monotonic()
            runs = fetch_json(base + "runs")["runs"]
            timings.append(time.monotonic() - started)
            many = [entry for entry in runs if entry["run"].startswith("many_")]
            if len(many) == MANY and all(entry["probes"] and entry["layers"][0]["step_count"] == 2 for entry in many):
                break
            assert sum(timings) < DEADLINE, runs
        assert [entry["run"] for entry in many] == [f"many_{index:03d}" for index in range(MANY)]
        assert all(entry["probes"]["count"] == 3 and [layer["layer"] for layer in entry["layers"]] == ["conv"] for entry in many)
        started = time.monotonic()
        fetch_json(base + "runs")
        warm = time.monotonic() - started
        print(f"load_fast={load_fast}: runs over {len(runs)} runs: first {timings[0] * 1000:.0f} ms, cached {warm * 1000:.0f} ms")
        assert max(timings) < 4 and warm < 1, (timings, warm)


def test_new_steps_are_served_as_soon_as_listed(servers, logs):
    """A step is served by every route the moment ``runs`` shows it, although its series was cached before."""
    bases = {load_fast: root + ROUTES for load_fast, root in servers.items()}
    for step in (3, 4):
        for base in bases.values():
            assert status(base, f"grid?run=live&layer=conv&step={step}") == 404  # caches the series without the step
            assert status(base, f"stats?run=live&layer=conv&step={step}") == 404
        log_step(logs.live, step)
        logged = time.monotonic()
        for load_fast, base in bases.items():
            poll(lambda base=base, step=step: last_step(base, "live") == step, f"step {step} in runs")
            print(f"load_fast={load_fast}: step {step} listed {time.monotonic() - logged:.2f} s after it was logged")
            assert fetch_json(base + "steps?run=live&layer=conv")["steps"] == list(range(step + 1))
            status_code, png = fetch(base + f"grid?run=live&layer=conv&step={step}&probe=1")
            assert (status_code, png[:8]) == (200, PNG)
            assert fetch_json(base + f"stats?run=live&layer=conv&step={step}")["step"] == step
            assert fetch_json(base + "activity?run=live&layer=conv")["steps"][-1] == step
            assert fetch_json(base + "filter_stats?run=live&layer=conv&filter=3")["steps"][-1] == step


def test_truncated_last_record(servers, logs):
    """A record cut off mid-write hides only its own step; written in full, the step appears."""
    bases = [root + ROUTES for root in servers.values()]
    for base in bases:
        poll(lambda base=base: last_step(base, "cut") == 3, "run cut")
        assert run_entry(base, "cut")["layers"][0]["step_count"] == 4
        assert fetch_json(base + "steps?run=cut&layer=conv")["steps"] == [0, 1, 2, 3]
        assert fetch(base + "grid?run=cut&layer=conv&step=3")[1][:8] == PNG
        assert status(base, "grid?run=cut&layer=conv&step=4") == 404
        assert status(base, "stats?run=cut&layer=conv&step=4") == 404
        assert fetch_json(base + "activity?run=cut&layer=conv")["steps"] == [0, 1, 2, 3]
        assert status(base, "probe?run=cut&index=2") == 200
    with open(logs.cut_file, "ab") as file:
        file.write(logs.cut_tail)
    for base in bases:
        poll(lambda base=base: fetch_json(base + "steps?run=cut&layer=conv")["steps"] == [0, 1, 2, 3, 4], "the completed step 4")
        assert status(base, "grid?run=cut&layer=conv&step=4") == 200
        assert fetch_json(base + "stats?run=cut&layer=conv&step=4")["step"] == 4


DOOMED_ROUTES = [
    "steps?run=doomed&layer=conv",
    "grid?run=doomed&layer=conv&step=2",
    "stats?run=doomed&layer=conv&step=2",
    "filter_stats?run=doomed&layer=conv&filter=0",
    "activity?run=doomed&layer=conv",
    "probe?run=doomed&index=0",
]


def test_deleted_run_is_not_found(servers, logs):
    """Once TensorBoard drops a deleted run, all its routes answer 404 (cached ones within ``FRESH_SECONDS``)."""
    bases = {load_fast: root + ROUTES for load_fast, root in servers.items()}
    for base in bases.values():
        poll(lambda base=base: last_step(base, "doomed") == 2, "run doomed")
        assert [status(base, route) for route in DOOMED_ROUTES] == [200] * len(DOOMED_ROUTES)  # now cached
    shutil.rmtree(logs.path / "doomed")
    deleted = time.monotonic()
    for load_fast, base in bases.items():
        poll(lambda base=base: run_entry(base, "doomed") is None, "runs to drop doomed")
        dropped = time.monotonic()
        poll(lambda base=base: all(status(base, route) == 404 for route in DOOMED_ROUTES), "404s for doomed")
        print(f"load_fast={load_fast}: deleted run unlisted after {dropped - deleted:.2f} s, 404 everywhere {time.monotonic() - dropped:.2f} s later")
        assert time.monotonic() - dropped < FRESH_SECONDS + 3
        assert status(base, "grid?run=many_000&layer=conv&step=1") == 200
        assert fetch_json(base + "stats?run=many_000&layer=conv&step=1")["step"] == 1


# In-process: races and malformed series -----------------------------------------------------------

VANISHING_ROUTES = [
    ("runs", {}),
    ("steps", {"run": "gone", "layer": "conv"}),
    ("grid", {"run": "gone", "layer": "conv", "step": "1"}),
    ("stats", {"run": "gone", "layer": "conv", "step": "1"}),
    ("activity", {"run": "gone", "layer": "conv"}),
    ("probe", {"run": "gone", "index": "0"}),
]


@pytest.mark.parametrize("at_call", [1, 2])
@pytest.mark.parametrize(("route", "query"), VANISHING_ROUTES)
def test_run_deleted_during_a_request(tmp_path, route, query, at_call):
    """The Python loader drops a deleted run between two of its look-ups in one request: 404, not 500."""
    for run in ("kept", "gone"):
        write_log(tmp_path / run, steps=[0, 1])
    multiplexer = multiplexer_for(tmp_path)
    client = make_client(tmp_path, multiplexer=multiplexer)
    tensors, calls = multiplexer.Tensors, itertools.count(1)

    def vanishing(run: str, tag: str):
        if run == "gone" and next(calls) == at_call:  # TensorBoard's reload thread, at the worst moment
            shutil.rmtree(tmp_path / "gone")
            multiplexer.Reload()
        return tensors(run, tag)

    multiplexer.Tensors = vanishing
    if route == "runs":  # listed or not, depending on which look-up missed it; never a 500
        assert "kept" in [entry["run"] for entry in get_json(client, "runs")["runs"]]
    else:
        response = get(client, route, **query)
        assert (response.status_code, response.mimetype) == (404, "text/plain"), response.data


def write_series(run_dir: Path, series: list[tuple[str, np.ndarray, object]]) -> None:
    """One event of hand-made ``feature_maps`` blob sequences: ``(tag, value, content as JSON)``."""
    values = []
    for tag, value, content in series:
        plugin_data = summary_pb2.SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=json.dumps(content).encode())
        summary_metadata = summary_pb2.SummaryMetadata(plugin_data=plugin_data, data_class=summary_pb2.DATA_CLASS_BLOB_SEQUENCE)
        values.append(summary_pb2.Summary.Value(tag=tag, tensor=tensor_util.make_tensor_proto(value), metadata=summary_metadata))
    file = EventFile(str(run_dir))
    file.add(event_pb2.Event(step=0, wall_time=1.0, summary=summary_pb2.Summary(value=values)))
    file.close()


def test_malformed_series_never_break_the_listing(tmp_path):
    """Series no version of the callback writes are left out of ``runs`` (they made it a 500 for every run)."""
    image = np.array([b"2", b"2", render.encode_png(np.zeros((2, 2), np.uint8))], dtype=object)
    write_log(tmp_path / "good", steps=[0])
    write_series(tmp_path / "labels_not_a_list", [("probes", image, {"version": 1, "kind": "probes", "labels": 5})])
    write_series(tmp_path / "version_null", [("probes", image, {"version": None, "kind": "probes"})])
    write_series(tmp_path / "numbers", [("probes", np.zeros(3, np.float32), {"version": 1, "kind": "probes", "labels": []})])
    layer = metadata.LayerInfo("activations", "conv", "Conv2D", 0, [None, 2, 2, 1], metadata.GridLayout(2, 2, 1, 1, 1), 1, 1, ["p"], "epoch")
    numbered = {**layer.to_json(), "layer": 7}
    write_series(tmp_path / "layer_number", [("activations/conv", image, layer.to_json()), ("activations/7", image, numbered)])
    client = make_client(tmp_path)
    runs = {entry["run"]: entry for entry in get_json(client, "runs")["runs"]}
    assert runs["good"]["probes"]["count"] == 3 and runs["good"]["layers"][0]["step_count"] == 1
    assert runs["labels_not_a_list"]["probes"] == {"count": 1, "labels": [], "width": 2, "height": 2, "input_shape": None}
    assert runs["version_null"]["probes"] is None and runs["numbers"]["probes"] is None
    assert [entry["layer"] for entry in runs["layer_number"]["layers"]] == ["conv"]
    assert get(client, "probe", run="numbers", index="0").status_code == 404
