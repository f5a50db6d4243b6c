"""The plugin's HTTP routes, served by a real TensorBoard WSGI app over real event files."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from helpers.logs import write_log, write_newer_format_run
from helpers.plugin import BASE, assert_refused, finite, get, get_json, get_png, make_client, multiplexer_for
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.plugins import base_plugin
from tensorboard.util import tensor_util
from werkzeug.test import Client

from tb_featuremaps import reader
from tb_featuremaps.format import metadata
from tb_featuremaps.plugin.loader import FeatureMapsLoader
from tb_featuremaps.plugin.plugin import FeatureMapsPlugin
from tb_featuremaps.plugin.static import StaticFiles

RUN = metadata.DEFAULT_RUN_NAME
LAYERS = ["conv1", "pool1", "conv2", "pool2"]
FILTERS = [8, 8, 16, 16]
LAYER_KEYS = {
    "layer", "class", "index", "output_shape", "tile_height", "tile_width", "rows", "cols", "gutter", "filters_shown", "filters_total",
    "probe_labels", "step_unit", "reduction", "normalization", "tiles_per_filter", "step_count", "first_step", "last_step", "last_wall_time",
    "weights", "strongest", "has_stats", "has_topk", "has_change", "has_responses", "map_shape",
}  # fmt: skip
STATIC_NAMES = {"index.js": "text/javascript", "style.css": "text/css", "icon.png": "image/png", "logo.svg": "image/svg+xml"}


# The trained fixture ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(trained_logdir) -> Client:
    return make_client(trained_logdir)


@pytest.fixture(scope="module")
def logged(trained_logdir) -> reader.RunLog:
    return reader.load(trained_logdir)[RUN]


@pytest.fixture(scope="module")
def listing(client) -> dict:
    return get_json(client, "runs")


def test_plugin_is_listed_with_its_tab(client):
    plugins = json.loads(client.get("/data/plugins_listing").data)
    entry = plugins["feature_maps"]
    assert entry["enabled"] is True
    assert entry["tab_name"] == "Feature Maps"
    assert entry["loading_mechanism"] == {"type": "IFRAME", "module_path": "/data/plugin/feature_maps/index.js"}


def test_runs_lists_layers_in_model_order(listing, logged):
    assert listing["errors"] == []
    (run,) = listing["runs"]
    assert run["run"] == RUN
    assert [layer["layer"] for layer in run["layers"]] == LAYERS
    assert [layer["filters_shown"] for layer in run["layers"]] == FILTERS
    assert run["probes"] == {"count": 10, "labels": [str(d) for d in range(10)], "width": 28, "height": 28, "input_shape": [28, 28, 1]}
    assert run["pool"] is None
    for entry in run["layers"]:
        assert set(entry) == LAYER_KEYS
        assert (entry["step_count"], entry["first_step"], entry["last_step"]) == (13, 0, 12)
        assert entry["has_stats"] is True
        assert entry["strongest"] is None and entry["has_change"] is True
        info = logged.layers[entry["layer"]].info
        assert (entry["rows"], entry["cols"], entry["tile_height"], entry["class"]) == (
            info.layout.rows,
            info.layout.cols,
            info.layout.tile_height,
            info.layer_class,
        )
        if entry["layer"].startswith("conv"):
            kernel, weights = logged.weights[entry["layer"]].info, entry["weights"]
            assert (weights["tile_height"], weights["tile_width"], weights["filters_shown"]) == (5, 5, kernel.filters_shown)
            assert (weights["rows"], weights["cols"]) == (kernel.layout.rows, kernel.layout.cols)
        else:
            assert entry["weights"] is None


@pytest.mark.parametrize("layer", LAYERS)
def test_steps_of_each_layer(client, layer, logged, listing):
    answer = get_json(client, "steps", run=RUN, layer=layer)
    assert answer["steps"] == list(range(13))
    entry = next(entry for entry in listing["runs"][0]["layers"] if entry["layer"] == layer)
    assert (entry["last_step"], entry["last_wall_time"]) == (answer["steps"][-1], answer["wall_times"][-1])  # the panel's first grid key
    assert answer["wall_times"] == pytest.approx(logged.layers[layer].wall_times.tolist())
    assert answer["wall_times"] == sorted(answer["wall_times"])


def test_steps_of_weights(client):
    assert get_json(client, "steps", run=RUN, layer="conv2", kind="weights")["steps"] == list(range(13))
    assert get(client, "steps", run=RUN, layer="pool1", kind="weights").status_code == 404


@pytest.mark.parametrize(("step", "probe"), [(0, 0), (7, 9), (12, 3)])
def test_grid_is_the_logged_png(client, listing, logged, step, probe):
    for entry in listing["runs"][0]["layers"]:
        image = get_png(client, "grid", run=RUN, layer=entry["layer"], step=step, probe=probe)
        height = entry["rows"] * (entry["tile_height"] + entry["gutter"]) - entry["gutter"]
        width = entry["cols"] * (entry["tile_width"] + entry["gutter"]) - entry["gutter"]
        assert image.shape[:2] == (height, width)
        layer_log = logged.layers[entry["layer"]]
        np.testing.assert_array_equal(image, layer_log.grid(layer_log.index_of(step), probe))


@pytest.mark.parametrize("kind", ["activations", "weights"])
def test_grids_answers_the_grid_pngs_of_several_steps_in_their_order(client, kind):
    steps = [12, 0, 7, 7, 3]
    probe = 0 if kind == "weights" else 4
    response = get(client, "grids", run=RUN, layer="conv2", kind=kind, steps=",".join(map(str, steps)), probe=probe)
    assert response.status_code == 200 and response.mimetype == "application/octet-stream"
    lengths = [int(length) for length in response.headers["X-Grid-Lengths"].split(",")]
    assert len(lengths) == len(steps) and sum(lengths) == len(response.data)
    offsets = np.cumsum([0, *lengths])
    for index, step in enumerate(steps):
        alone = get(client, "grid", run=RUN, layer="conv2", kind=kind, step=step, probe=probe).data
        assert response.data[offsets[index] : offsets[index + 1]] == alone


def test_grid_probe_defaults_to_zero_and_weights_kind(client, listing, logged):
    np.testing.assert_array_equal(get_png(client, "grid", run=RUN, layer="conv1", step=4), logged.layers["conv1"].grid(4, 0))
    weights = listing["runs"][0]["layers"][0]["weights"]
    kernel = get_png(client, "grid", run=RUN, layer="conv1", step=4, kind="weights")
    assert kernel.shape[:2] == (weights["rows"] * 6 - 1, weights["cols"] * 6 - 1)
    np.testing.assert_array_equal(kernel, logged.weights["conv1"].grid(4, 0))


@pytest.mark.parametrize("layer", ["conv1", "pool2"])
def test_stats_match_the_reader(client, logged, layer):
    answer = get_json(client, "stats", run=RUN, layer=layer, step=5)
    assert answer["step"] == 5
    assert answer["fields"] == list(metadata.STATS_FIELDS)
    np.testing.assert_allclose(finite(answer["values"]), logged.layers[layer].stats[5], rtol=1e-6)


def test_filter_stats_follow_one_filter(client, logged):
    answer = get_json(client, "filter_stats", run=RUN, layer="conv2", filter=15)
    assert answer["steps"] == list(range(13))
    assert answer["fields"] == list(metadata.STATS_FIELDS)
    np.testing.assert_allclose(finite(answer["values"]), logged.layers["conv2"].stats[:, :, 15, :], rtol=1e-6)
    assert get(client, "filter_stats", run=RUN, layer="conv2", filter=16).status_code == 404


@pytest.mark.parametrize("layer", LAYERS)
def test_activity_means_and_dead_filters(client, logged, trained_logdir, layer):
    answer = get_json(client, "activity", run=RUN, layer=layer)
    stats = logged.layers[layer].stats
    assert answer["steps"] == list(range(13))
    np.testing.assert_allclose(finite(answer["mean"]), stats[..., 2].mean(axis=1), rtol=1e-5)
    dead = np.array(answer["dead"])
    assert dead.shape == (stats.shape[0], stats.shape[2]) and dead.dtype == bool
    # The callback's own "dead filters" scalars count the same filters.
    events = multiplexer_for(trained_logdir).Tensors(RUN, metadata.scalars_tag("dead_filters", layer))
    assert dead.sum(axis=1).tolist() == [int(tensor_util.make_ndarray(event.tensor_proto)) for event in events]


def test_probe_pictures(client, logged):
    for index in range(10):
        picture = get_png(client, "probe", run=RUN, index=index)
        assert picture.shape == (28, 28)
        np.testing.assert_array_equal(picture, logged.probe_images[index])


BAD_REQUESTS = [
    # (route, query, status)
    ("steps", {"layer": "conv1"}, 400),
    ("steps", {"run": "", "layer": "conv1"}, 400),
    ("steps", {"run": RUN}, 400),
    ("steps", {"run": RUN, "layer": "conv1", "kind": "stats"}, 400),
    ("steps", {"run": "nope", "layer": "conv1"}, 404),
    ("steps", {"run": RUN, "layer": "dense"}, 404),
    ("grid", {"run": RUN, "layer": "conv1"}, 400),
    ("grid", {"run": RUN, "layer": "conv1", "step": "-1"}, 400),
    ("grid", {"run": RUN, "layer": "conv1", "step": "1.5"}, 400),
    ("grid", {"run": RUN, "layer": "conv1", "step": "+1"}, 400),
    ("grid", {"run": RUN, "layer": "conv1", "step": " 1"}, 400),
    ("grid", {"run": RUN, "layer": "conv1", "step": "1_0"}, 400),
    ("grid", {"run": RUN, "layer": "conv1", "step": "١"}, 400),
    ("grid", {"run": RUN, "layer": "conv1", "step": "9" * 5000}, 400),
    ("grid", {"run": RUN, "layer": "conv1", "step": "0x1"}, 400),
    ("grid", {"run": RUN, "layer": "conv1", "step": "1", "probe": "a"}, 400),
    ("grid", {"run": RUN, "layer": "conv1", "step": "1", "kind": ""}, 400),
    ("grid", {"run": RUN, "layer": "conv1", "step": "13"}, 404),
    ("grid", {"run": RUN, "layer": "conv1", "step": "1", "probe": "10"}, 404),
    ("grid", {"run": RUN, "layer": "conv1", "step": "1", "probe": "1", "kind": "weights"}, 404),
    ("grid", {"run": RUN, "layer": "pool1", "step": "1", "kind": "weights"}, 404),
    ("grid", {"run": "nope", "layer": "conv1", "step": "1"}, 404),
    ("grid", {"run": RUN, "layer": "CONV1", "step": "1"}, 404),
    ("grids", {"run": RUN, "layer": "conv1"}, 400),
    ("grids", {"run": RUN, "layer": "conv1", "steps": ""}, 400),
    ("grids", {"run": RUN, "layer": "conv1", "steps": "1,,2"}, 400),
    ("grids", {"run": RUN, "layer": "conv1", "steps": "1,-2"}, 400),
    ("grids", {"run": RUN, "layer": "conv1", "steps": ",".join(["1"] * 65)}, 400),
    ("grids", {"run": RUN, "layer": "conv1", "steps": "1,2", "probe": "x"}, 400),
    ("grids", {"run": RUN, "layer": "conv1", "steps": "1,13"}, 404),
    ("grids", {"run": RUN, "layer": "conv1", "steps": "1", "probe": "10"}, 404),
    ("grids", {"run": "nope", "layer": "conv1", "steps": "1"}, 404),
    ("stats", {"run": RUN, "layer": "conv1"}, 400),
    ("stats", {"run": RUN, "layer": "conv1", "step": "x"}, 400),
    ("stats", {"run": RUN, "layer": "conv1", "step": "99"}, 404),
    ("stats", {"run": RUN, "layer": "logits", "step": "1"}, 404),
    ("filter_stats", {"run": RUN, "layer": "conv1"}, 400),
    ("filter_stats", {"run": RUN, "layer": "conv1", "filter": "-3"}, 400),
    ("filter_stats", {"run": RUN, "layer": "conv1", "filter": "8"}, 404),
    ("filter_stats", {"run": "nope", "layer": "conv1", "filter": "0"}, 404),
    ("activity", {"run": RUN}, 400),
    ("activity", {"run": RUN, "layer": "nope"}, 404),
    ("probe", {"run": RUN}, 400),
    ("probe", {"run": RUN, "index": "NaN"}, 400),
    ("probe", {"run": RUN, "index": "10"}, 404),
    ("probe", {"run": "nope", "index": "0"}, 404),
]


@pytest.mark.parametrize(("route", "query", "status"), BAD_REQUESTS)
def test_bad_parameters_are_refused_with_a_reason(client, route, query, status):
    assert_refused(client, route, query, status)


# Files -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("static")
    for name in STATIC_NAMES:
        (directory / name).write_bytes(f"content of {name}".encode())
    for name in ("bad name.js", ".hidden.js", "notes.txt", "a..js", "x.js.map"):
        (directory / name).write_bytes(b"never served")
    (directory / "sub").mkdir()
    (directory / "sub" / "inner.js").write_bytes(b"never served")
    secret = directory.parent / "secret.js"
    secret.write_bytes(b"never served")
    (directory / "link.js").symlink_to(secret)
    return directory


@pytest.fixture(scope="module")
def file_client(trained_logdir, static_dir) -> Client:
    return make_client(trained_logdir, static_directory=static_dir)


def test_static_allow_list(static_dir):
    assert StaticFiles(static_dir).names == sorted(STATIC_NAMES)


def test_static_files_are_served_with_their_type(file_client):
    for name, content_type in STATIC_NAMES.items():
        response = file_client.get(BASE + "static/" + name)
        assert response.status_code == 200, name
        assert response.mimetype == content_type
        assert response.data == f"content of {name}".encode()
    index = file_client.get(BASE + "index.js")
    assert (index.status_code, index.data) == (200, b"content of index.js")
    assert file_client.get("/experiment/some-id" + BASE + "static/style.css").data == b"content of style.css"


@pytest.mark.parametrize(
    "path",
    [
        "static/bad name.js", "static/bad%20name.js", "static/.hidden.js", "static/notes.txt", "static/a..js", "static/x.js.map",
        "static/sub/inner.js", "static/link.js", "static/secret.js", "static/../plugin.py", "static/%2e%2e%2fplugin.py",
        "static/..%2F..%2Fsecret.js", "static/..\\secret.js", "static/%5c..%5csecret.js", "static//etc/passwd", "static/%2Fetc%2Fpasswd",
        "static/index.js/", "static/index.js%00.png", "static/INDEX.JS", "static/", "static", "index.js/../style.css",
    ],
)  # fmt: skip
def test_no_other_file_is_reachable(file_client, path):
    response = file_client.get(BASE + path)
    assert response.status_code == 404, response.data
    assert b"never served" not in response.data


def test_shipped_panel_files_are_served(client):
    shipped = Path(__file__).resolve().parents[1] / "tb_featuremaps" / "plugin" / "static"
    names = StaticFiles(shipped).names
    assert "index.js" in names
    for name in names:
        response = client.get(BASE + "static/" + name)
        assert response.status_code == 200
        assert response.data == (shipped / name).read_bytes()


# Hostile names, NaN stats, growing logs, sampling ----------------------------------------

HOSTILE_RUNS = ["<script>alert(1)</script>", "quo\"te's & amp", "ünï côdé ☃ 層"]
HOSTILE_LAYERS = ["../../etc/passwd", "<img src=x onerror=alert(1)>", "a\"b'c\\d", "nested/ü/層 sp"]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, Client]:
    logdir = tmp_path_factory.mktemp("hostile")
    for run in HOSTILE_RUNS:
        write_log(logdir / run, layers=HOSTILE_LAYERS, steps=[0, 3])
    return logdir, make_client(logdir)


def test_hostile_names_round_trip_as_data(hostile):
    _, client = hostile
    response = get(client, "runs")
    assert response.mimetype == "application/json" and response.headers["X-Content-Type-Options"] == "nosniff"
    runs = json.loads(response.data)["runs"]
    assert [run["run"] for run in runs] == sorted(HOSTILE_RUNS)
    for run in runs:
        assert [layer["layer"] for layer in run["layers"]] == HOSTILE_LAYERS
        for layer in HOSTILE_LAYERS:
            assert get_json(client, "steps", run=run["run"], layer=layer)["steps"] == [0, 3]
            assert get_png(client, "grid", run=run["run"], layer=layer, step=3, probe=2).shape == (13, 13)
            assert get_json(client, "stats", run=run["run"], layer=layer, step=0)["step"] == 0


def test_nan_stats_are_served_as_json(tmp_path):
    write_log(tmp_path / "run", steps=[0, 1], nan_probe=True)
    client = make_client(tmp_path)
    values = get_json(client, "stats", run="run", layer="conv", step=1)["values"]
    assert values[0][2][:2] == ["NaN", "NaN"] and values[0][2][4] == 1.0
    activity = get_json(client, "activity", run="run", layer="conv")
    assert [row[2:] for row in activity["mean"]] == [["NaN", 0.0], ["NaN", 0.0]]
    assert [row[2:] for row in activity["dead"]] == [[False, True], [False, True]]


def test_series_of_a_newer_format_are_left_out(tmp_path):
    write_log(tmp_path / "run", layers=["old"], steps=[0])
    write_newer_format_run(tmp_path / "future")
    runs = get_json(make_client(tmp_path), "runs")["runs"]
    assert [(run["run"], run["probes"], [layer["layer"] for layer in run["layers"]]) for run in runs] == [
        ("future", None, []),
        ("run", {"count": 3, "labels": ["p0", "p1", "p2"], "width": 8, "height": 8, "input_shape": [8, 8, 1]}, ["old"]),
    ]


def test_new_steps_are_served_after_a_reload(tmp_path):
    write_log(tmp_path / "run", steps=[0, 1, 2])
    multiplexer = multiplexer_for(tmp_path)
    client = make_client(tmp_path, multiplexer=multiplexer)
    assert get_json(client, "steps", run="run", layer="conv")["steps"] == [0, 1, 2]
    assert get(client, "grid", run="run", layer="conv", step=4).status_code == 404
    assert get(client, "stats", run="run", layer="conv", step=4).status_code == 404
    write_log(tmp_path / "run", steps=[3, 4], resume=True)  # a second writer, after the first closed, appends a new event file
    multiplexer.Reload()
    assert get(client, "grid", run="run", layer="conv", step=4).status_code == 200
    assert get_json(client, "stats", run="run", layer="conv", step=4)["step"] == 4
    assert get_json(client, "steps", run="run", layer="conv")["steps"] == [0, 1, 2, 3, 4]
    assert get_json(client, "activity", run="run", layer="conv")["steps"] == [0, 1, 2, 3, 4]
    assert get_json(client, "runs")["runs"][0]["layers"][0]["step_count"] == 5


@pytest.mark.parametrize(("samples", "count"), [({}, 30), ({"feature_maps": 0}, 30), ({"feature_maps": 5}, 5)])
def test_sampling_hint_limits_served_steps(tmp_path, samples, count):
    write_log(tmp_path / "run", steps=range(30))
    client = make_client(tmp_path, samples=samples)
    steps = get_json(client, "steps", run="run", layer="conv")["steps"]
    assert len(steps) == count and steps[-1] == 29
    assert len(get_json(client, "activity", run="run", layer="conv")["steps"]) == count


def test_fix_flags_defaults_to_every_step_and_keeps_the_users_value():
    flags = argparse.Namespace(samples_per_plugin={"images": 3})
    FeatureMapsLoader().fix_flags(flags)
    assert flags.samples_per_plugin == {"images": 3, "feature_maps": 0}
    flags = argparse.Namespace(samples_per_plugin={"feature_maps": 7})
    FeatureMapsLoader().fix_flags(flags)
    assert flags.samples_per_plugin == {"feature_maps": 7}


def test_loader_builds_the_plugin():
    plugin = FeatureMapsLoader().load(base_plugin.TBContext(data_provider=None, sampling_hints={}))
    assert isinstance(plugin, FeatureMapsPlugin)
    assert plugin.frontend_metadata().es_module_path == "/index.js"
    assert plugin.data_plugin_names() == ("feature_maps",)
    assert plugin.is_active() is False


def test_importing_the_plugin_needs_no_tensorflow_or_keras():
    code = (
        "import sys\n"
        "import tb_featuremaps.plugin, tb_featuremaps.plugin.loader, tb_featuremaps.plugin.plugin\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'tensorflow', 'keras'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, env={**os.environ, "PYTHONPATH": ""}
    )
    assert result.stdout.strip() == "[]"


# Fuzzing ------------------------------------------------------------------------------

ROUTES = ["runs", "steps", "grid", "stats", "filter_stats", "activity", "probe", "topk", "change", "pool", "index.js", "static/x.js", "nope"]
KEYS = ["run", "layer", "kind", "step", "probe", "filter", "index"]
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
VALUES = st.one_of(
    st.sampled_from([RUN, *LAYERS, "activations", "weights", "0", "3", "12", "15", "-1", "1e3", ""]), _text, st.integers(0, 99).map(str)
)


@settings(max_examples=150, deadline=None)
@given(route=st.sampled_from(ROUTES), query=st.dictionaries(st.sampled_from(KEYS) | _text, VALUES, max_size=6))
def test_fuzzed_parameters_never_fail(client, route, query):
    response = client.get(BASE + route + "?" + urllib.parse.urlencode(query))
    assert response.status_code in (200, 400, 404), (route, query, response.data)


def test_a_listing_answers_the_next_requests_until_tensorboard_could_have_reloaded(tmp_path, monkeypatch):
    from tb_featuremaps.plugin import catalog, series

    write_log(tmp_path / "run", steps=range(2))
    multiplexer = multiplexer_for(tmp_path)
    client = make_client(tmp_path, multiplexer=multiplexer)
    listings = []
    blob_series = series.SeriesReader.blob_series

    def counted(self, ctx, eid, run=None, tag=None):
        if run is None:
            listings.append(eid)
        return blob_series(self, ctx, eid, run, tag)

    monkeypatch.setattr(series.SeriesReader, "blob_series", counted)
    first = get_json(client, "runs")
    assert get_json(client, "runs") == first and len(listings) == 1  # the second request within FRESH_SECONDS
    write_log(tmp_path / "run", steps=range(2, 4), resume=True)
    multiplexer.Reload()
    monkeypatch.setattr(catalog, "FRESH_SECONDS", 0.0)  # as if the window had passed
    monkeypatch.setattr(catalog, "LISTING_SHARE", 0.0)
    monkeypatch.setattr(catalog, "STALE_SECONDS", 0.0)  # and the one in which it answers while listed again
    steps = get_json(client, "runs")["runs"][0]["layers"][0]["step_count"]
    assert len(listings) == 2 and steps == 4
