"""The routes of what each filter looks for (``topk``, ``pool``, ``grid`` of ``strongest``) and of its change between steps.

The log is written through ``FeatureMapsWriter`` with a pool (no training), so every value is known:
the expected top-k come from ``render.strongest`` over the same pool outputs.
"""

from __future__ import annotations

import dataclasses
import io
import json
import urllib.parse

import numpy as np
import pytest
from helpers.logs import LABELS, POOL_LABELS, POOL_SIZE, pool_outputs, write_pool_run
from helpers.plugin import assert_refused, finite, get, get_json, get_png, make_client
from helpers.tensorboard import each_loader, fetch, fetch_json, poll
from PIL import Image

from tb_featuremaps.format import kinds, metadata
from tb_featuremaps.render import strongest

RUN = "run"
STEPS = [0, 1, 2]
TOP_K = 3
FILTERS = 4


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("strongest")
    write_pool_run(logdir / RUN, STEPS, top_k=TOP_K, filters=FILTERS)
    return logdir


@pytest.fixture(scope="module")
def client(logdir):
    return make_client(logdir)


def expected_topk(step: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs [F, k], values [F, k]) of ``conv`` at ``step``, from the pool outputs the log was written with."""
    inputs, values, _ = strongest.top_k(strongest.responses(pool_outputs(step, FILTERS)), TOP_K)
    return inputs, values


def test_runs_list_the_pool_the_sheet_and_the_change(client):
    (run,) = get_json(client, "runs")["runs"]
    assert run["pool"] == {"count": POOL_SIZE, "labels": POOL_LABELS, "width": 8, "height": 8, "input_shape": [8, 8, 1]}
    conv, dense = run["layers"]
    sheet = conv["strongest"]
    assert (sheet["rows"], sheet["cols"], sheet["tiles_per_filter"], sheet["filters_shown"]) == (FILTERS, TOP_K, TOP_K, FILTERS)
    assert (sheet["tile_height"], sheet["tile_width"], sheet["reduction"]) == (3, 3, "none")
    assert sheet["extra"]["receptive_field"] == {"size": [3, 3], "jump": [1, 1], "start": [-1, -1]}
    assert sheet["extra"]["top_k"] == TOP_K and len(sheet["extra"]["input_range"]) == 2 and sheet["ranks"] == TOP_K
    assert conv["has_change"] is True and dense["has_change"] is True
    assert dense["strongest"] is None


@pytest.mark.parametrize("step", STEPS)
def test_topk_are_each_filters_strongest_pool_inputs_with_their_labels(client, step):
    answer = get_json(client, "topk", run=RUN, layer="conv", step=step)
    assert answer["truncated"] is False
    assert answer["step"] == step and answer["fields"] == list(metadata.TOPK_FIELDS)
    values = finite(answer["values"])
    assert values.shape == (FILTERS, TOP_K, len(metadata.TOPK_FIELDS))
    inputs, strengths = expected_topk(step)
    np.testing.assert_array_equal(values[..., 0], inputs)
    np.testing.assert_allclose(values[..., 1], strengths, rtol=1e-6)
    assert answer["labels"] == [[POOL_LABELS[index] for index in ranks] for ranks in inputs.tolist()]
    # the patch's corner is the receptive field's at the maximum: start + position * jump
    np.testing.assert_array_equal(values[..., 4:6], values[..., 2:4] - 1)


def test_strongest_sheet_is_served_by_grid_and_grids(client):
    sheet = get_png(client, "grid", run=RUN, layer="conv", step=1, kind="strongest")
    assert sheet.shape[:2] == (FILTERS * 4 - 1, TOP_K * 4 - 1)
    response = get(client, "grids", run=RUN, layer="conv", steps="2,1", kind="strongest")
    lengths = [int(length) for length in response.headers["X-Grid-Lengths"].split(",")]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(response.data[lengths[0] :]))), sheet)
    assert get_json(client, "steps", run=RUN, layer="conv", kind="strongest")["steps"] == STEPS


def test_change_per_filter_and_the_fraction_still_changing(client):
    answer = get_json(client, "change", run=RUN, layer="conv")
    assert answer["steps"] == STEPS and answer["fields"] == list(metadata.CHANGE_FIELDS)
    assert answer["threshold"] == metadata.CHANGING_THRESHOLD
    values = finite(answer["values"])
    assert values.shape == (len(STEPS), FILTERS, 2)
    assert np.isnan(values[0]).all()  # nothing to compare the first step with
    assert (values[1:, : FILTERS // 2, 0] == 0).all() and (values[1:, FILTERS // 2 :, 0] > 0.05).all()
    assert answer["changing"] == [None, 0.5, 0.5]
    dense = get_json(client, "change", run=RUN, layer="dense")
    assert dense["changing"] == [None, None, None]  # no pool, no kernel: unknown


def test_pool_pictures(client):
    for index in (0, POOL_SIZE - 1):
        assert get_png(client, "pool", run=RUN, index=index).shape == (8, 8)
    assert get(client, "probe", run=RUN, index=1).status_code == 200  # the probes are their own series
    assert get(client, "probe", run=RUN, index=len(LABELS)).status_code == 404


BAD_REQUESTS = [
    # (route, query, status)
    ("topk", {"run": RUN, "layer": "conv"}, 400),
    ("topk", {"run": RUN, "step": "1"}, 400),
    ("topk", {"layer": "conv", "step": "1"}, 400),
    ("topk", {"run": RUN, "layer": "conv", "step": "x"}, 400),
    ("topk", {"run": RUN, "layer": "conv", "step": "-1"}, 400),
    ("topk", {"run": RUN, "layer": "conv", "step": "9"}, 404),
    ("topk", {"run": "nope", "layer": "conv", "step": "1"}, 404),
    ("topk", {"run": RUN, "layer": "nope", "step": "1"}, 404),
    ("topk", {"run": RUN, "layer": "dense", "step": "1"}, 404),  # a layer without a pool
    ("change", {"run": RUN}, 400),
    ("change", {"layer": "conv"}, 400),
    ("change", {"run": "nope", "layer": "conv"}, 404),
    ("change", {"run": RUN, "layer": "nope"}, 404),
    ("pool", {"run": RUN}, 400),
    ("pool", {"run": RUN, "index": "a"}, 400),
    ("pool", {"run": RUN, "index": "1.0"}, 400),
    ("pool", {"run": RUN, "index": str(POOL_SIZE)}, 404),
    ("pool", {"run": "nope", "index": "0"}, 404),
    ("grid", {"run": RUN, "layer": "dense", "step": "1", "kind": "strongest"}, 404),
    ("grid", {"run": RUN, "layer": "conv", "step": "1", "probe": "1", "kind": "strongest"}, 404),
    ("grids", {"run": RUN, "layer": "conv", "steps": "1,7", "kind": "strongest"}, 404),
]


@pytest.mark.parametrize(("route", "query", "status"), BAD_REQUESTS)
def test_bad_parameters_are_refused_with_a_reason(client, route, query, status):
    assert_refused(client, route, query, status)


def test_a_run_without_a_pool(tmp_path):
    from helpers.logs import write_run

    write_run(tmp_path / "plain", [0, 1])
    client = make_client(tmp_path)
    (run,) = get_json(client, "runs")["runs"]
    assert run["pool"] is None and run["layers"][0]["strongest"] is None
    response = get(client, "pool", run="plain", index=0)
    assert response.status_code == 404 and response.mimetype == "text/plain"
    assert get(client, "topk", run="plain", layer="conv", step=0).status_code == 404


def test_both_loaders_serve_the_same(logdir):
    """The Rust data server (``--load_fast=true``) and the Python loader answer every new route alike."""
    base = "/data/plugin/feature_maps/"
    with each_loader(logdir) as servers:
        answers = {}
        for load_fast, url in servers.items():
            poll(lambda url=url: fetch_json(url + base + "runs")["runs"], f"--load_fast={load_fast} to list the run", interval=0.5)
            routes = {
                name: fetch(url + base + name + "?" + urllib.parse.urlencode(query))
                for name, query in {
                    "runs": {},
                    "topk": {"run": RUN, "layer": "conv", "step": 2},
                    "change": {"run": RUN, "layer": "conv"},
                    "pool": {"run": RUN, "index": 5},
                    "grid": {"run": RUN, "layer": "conv", "step": 2, "kind": "strongest"},
                }.items()
            }
            routes["missing"] = fetch(url + base + "topk?" + urllib.parse.urlencode({"run": RUN, "layer": "dense", "step": 2}))
            answers[load_fast] = routes
        fast, python = answers["true"], answers["false"]
        for name in ("runs", "topk", "change", "pool", "grid"):
            assert fast[name][0] == python[name][0] == 200, (name, fast[name][1][:200], python[name][1][:200])
        for name in ("runs", "topk", "change"):
            assert json.loads(fast[name][1]) == json.loads(python[name][1]), name
        assert fast["pool"][1] == python["pool"][1] and fast["grid"][1] == python["grid"][1]
        assert fast["missing"][0] == python["missing"][0] == 404


def test_topk_and_change_fields_are_read_by_name(tmp_path, monkeypatch):
    """A log whose topk and change series name their fields in another order, one missing and one unknown, reads aligned."""
    from helpers.logs import write_layer_step

    from tb_featuremaps import render
    from tb_featuremaps.writer.summary import SummaryWriter

    topk_fields = ["value", "input", "extra", "left", "top", "col"]  # "row" missing, "extra" unknown
    for kind, fields in ((metadata.KIND_TOPK, topk_fields), (metadata.KIND_CHANGE, ["kernel", "response"])):  # as another version writes
        monkeypatch.setitem(kinds.KINDS, kind, dataclasses.replace(kinds.KINDS[kind], fields=tuple(fields)))
    writer = SummaryWriter(str(tmp_path / "odd"))
    maps = np.random.default_rng(0).normal(size=(2, 4, 4, 2)).astype(np.float32)
    write_layer_step(writer, 0, "conv", 0, maps, ["a", "b"])
    layout = metadata.GridLayout(2, 2, 2, 1, 1)
    info = metadata.LayerInfo("strongest", "conv", "Conv2D", 0, [None, 4, 4, 2], layout, 2, 2, ["pool"], "epoch", tiles_per_filter=1)
    topk = np.array([[[5.0, 1.0, 99.0, -1.0, 2.0, 3.0]], [[4.0, 0.0, 99.0, 0.0, 1.0, 2.0]]], np.float32)  # [F=2, k=1, 6]
    sheet = render.encode_png(np.zeros((layout.height, layout.width), np.uint8))
    writer.write_layer(0, info, [sheet], tensors={metadata.KIND_TOPK: topk, metadata.KIND_CHANGE: np.array([[0.5, 0.01], [0.0, 0.2]], np.float32)})
    writer.close()
    monkeypatch.undo()
    client = make_client(tmp_path)
    answer = get_json(client, "topk", run="odd", layer="conv", step=0)
    values = finite(answer["values"])
    assert answer["fields"] == list(metadata.TOPK_FIELDS)
    np.testing.assert_array_equal(values[:, 0, [0, 1, 3, 4, 5]], [[1, 5, 3, 2, -1], [0, 4, 2, 1, 0]])
    assert np.isnan(values[:, 0, 2]).all()  # "row" was not logged
    assert answer["labels"] == [[None], [None]]  # no pool series: no labels
    change = get_json(client, "change", run="odd", layer="conv")
    np.testing.assert_allclose(finite(change["values"]), [[[0.01, 0.5], [0.2, 0.0]]], rtol=1e-6)
    assert change["changing"] == [0.5]  # filter 0's response changed 1 %, filter 1's 20 %


HOSTILE_K = 200_000
"""Ranks per filter of :func:`write_hostile_topk`'s ``topk`` tensor, far more than ``metadata.MAX_TOP_K``."""


def write_hostile_topk(run_dir, top_k: int = HOSTILE_K, tile: int = 1) -> None:
    """Layer ``conv``'s grid, a strongest sheet of ``top_k`` tiles per filter (9 for more than 1,000, which would be no grid
    a reader takes) and a ``topk`` tensor ``[2, top_k, 6]`` whose rank ``r`` is pool input ``r`` of value ``-r`` (strongest
    first), written through the format's own writer (``SummaryWriter``), as no producer would."""
    from helpers.logs import write_layer_step

    from tb_featuremaps import render
    from tb_featuremaps.writer.summary import SummaryWriter

    writer = SummaryWriter(str(run_dir))
    write_layer_step(writer, 0, "conv", 0, np.random.default_rng(0).normal(size=(2, 4, 4, 2)).astype(np.float32), ["a", "b"])
    sheet_k = top_k if top_k <= 1000 else 9  # a sheet of 200,000 columns is no grid a reader takes
    layout = metadata.GridLayout(tile, tile, 2, sheet_k, 1)
    info = metadata.LayerInfo("strongest", "conv", "Conv2D", 0, [None, 4, 4, 2], layout, 2, 2, ["pool"], "epoch", tiles_per_filter=sheet_k)
    ranks = np.arange(top_k, dtype=np.float32)
    topk = np.zeros((2, top_k, len(metadata.TOPK_FIELDS)), np.float32)
    topk[..., 0], topk[..., 1] = ranks, -ranks
    sheet = render.encode_png(np.zeros((layout.height, layout.width), np.uint8))
    writer.write_layer(0, info, [sheet], tensors={metadata.KIND_TOPK: topk}, images_copy=False)
    writer.close()


def test_a_hostile_top_k_is_cut_to_the_cap(tmp_path):
    """A topk series of 200,000 ranks per filter: the route answers the first MAX_TOP_K (the strongest), says it cut them,
    and its answer stays small (200,000 ranks are tens of MB of JSON)."""
    write_hostile_topk(tmp_path / "hostile")
    client = make_client(tmp_path)
    response = get(client, "topk", run="hostile", layer="conv", step=0)
    assert response.status_code == 200, response.data
    assert len(response.data) < 100_000
    answer = json.loads(response.data)
    values = np.array(answer["values"], np.float32)
    assert values.shape == (2, metadata.MAX_TOP_K, len(metadata.TOPK_FIELDS)) and answer["truncated"] is True
    np.testing.assert_array_equal(values[:, :, 0], np.tile(np.arange(metadata.MAX_TOP_K), (2, 1)))


def test_the_reader_and_the_listing_cut_a_hostile_top_k_too(tmp_path):
    """A sheet and topk of 150 ranks (more than MAX_TOP_K, a grid a reader takes): the first MAX_TOP_K are read, patches too,
    and the runs listing gives the panel MAX_TOP_K ranks to show."""
    from tb_featuremaps import reader

    write_hostile_topk(tmp_path / "hostile", top_k=150)
    (listed,) = get_json(make_client(tmp_path), "runs")["runs"]
    assert listed["layers"][0]["strongest"]["tiles_per_filter"] == 150 and listed["layers"][0]["strongest"]["ranks"] == metadata.MAX_TOP_K
    best = reader.load(str(tmp_path))["hostile"].strongest["conv"]
    assert best.top_k == metadata.MAX_TOP_K and best.truncated
    np.testing.assert_array_equal(best.inputs(0), np.tile(np.arange(metadata.MAX_TOP_K), (2, 1)))
    assert best.patches(0).shape == (2, metadata.MAX_TOP_K, 1, 1)
