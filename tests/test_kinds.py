"""The series kinds: one module each, one registry that the format's readers and writers consult."""

from __future__ import annotations

import dataclasses
import importlib
import json

import numpy as np
import pytest

from tb_featuremaps.format import content, kinds, metadata

MODULES = ("activations", "weights", "strongest", "stats", "topk", "change", "responses", "pool", "probes")


def test_every_kind_is_one_module_listed_in_the_registry():
    for name in MODULES:
        module = importlib.import_module(f"tb_featuremaps.format.kinds.{name}")
        assert module.NAME == name and kinds.KINDS[name] is module.KIND and kinds.lookup(name) is module.KIND
    assert set(kinds.KINDS) == set(MODULES)
    assert kinds.lookup("no such kind") is None and kinds.lookup(3) is None


def test_the_old_names_are_the_kind_modules_own():
    assert metadata.GRID_KINDS == ("activations", "weights", "strongest")
    assert metadata.TENSOR_KINDS == ("stats", "topk", "change", "responses")
    assert metadata.STATS_FIELDS is kinds.stats.STATS_FIELDS and metadata.FIELDS_BY_KIND["topk"] is kinds.topk.TOPK_FIELDS
    assert metadata.CHANGING_THRESHOLD == kinds.change.CHANGING_THRESHOLD and metadata.MAX_TOP_K == kinds.topk.MAX_TOP_K
    assert metadata.FormatError is content.FormatError and metadata.ReceptiveField is kinds.strongest.ReceptiveField


def test_describe_carries_each_kind_for_the_panel():
    described = json.loads(json.dumps(kinds.describe()))
    assert described["stats"]["fields"] == list(metadata.STATS_FIELDS) and described["stats"]["rank"] == 3
    assert described["stats"]["dead_threshold"] == metadata.DEAD_THRESHOLD and described["stats"]["grid"] == "activations"
    assert described["change"]["changing_threshold"] == metadata.CHANGING_THRESHOLD and described["change"]["measure"] == ["response", "kernel"]
    assert described["topk"]["max_top_k"] == metadata.MAX_TOP_K and described["topk"]["grid"] == "strongest"
    assert described["strongest"]["ranked"] is True and described["activations"]["ranked"] is False
    assert described["probes"]["per_layer"] is False and described["pool"]["storage"] == "blobs"
    assert all(entry["description"] for entry in described.values())


def test_tensor_kinds_cut_and_align_by_field_name():
    topk = kinds.tensor_kind("topk")
    value = np.arange(2 * 150 * 6, dtype=np.float32).reshape(2, 150, 6)
    assert topk.aligned(value, list(metadata.TOPK_FIELDS)).shape == (2, metadata.MAX_TOP_K, 6) and topk.truncated(value)
    change = kinds.tensor_kind("change")
    assert np.array_equal(change.aligned(np.array([[1.0, 2.0]], np.float32), ["kernel", "response"]), [[2.0, 1.0]])
    with pytest.raises(metadata.FormatError, match="rank 2"):
        change.aligned(np.zeros((2, 2, 2), np.float32), list(metadata.CHANGE_FIELDS))
    with pytest.raises(KeyError, match="not a tensor kind"):
        kinds.tensor_kind("activations")


def test_changing_filters_takes_the_response_else_the_kernel():
    change = np.array([[0.1, 0.0], [np.nan, 0.2], [0.0, 0.9], [np.nan, np.nan]], np.float32)
    assert kinds.change.changing_filters(change) == pytest.approx(2 / 3)
    assert np.isnan(kinds.change.changing_filters(np.full((2, 2), np.nan)))


def test_classify_follows_the_registry(monkeypatch):
    """A kind added to the registry is classified as its type says; one removed from it is skipped."""
    added = kinds.TensorKind("shape", "a test kind", fields=("a", "b"), axes=("filters",), grid="activations", what="shapes")
    monkeypatch.setitem(kinds.KINDS, "shape", added)
    series_metadata = added.metadata("conv")
    found = metadata.classify("shape/conv", series_metadata.plugin_data.content)
    assert found.kind == "shape" and found.layer == "conv" and found.info is None
    assert json.loads(series_metadata.plugin_data.content)["fields"] == ["a", "b"]
    with pytest.raises(metadata.FormatError, match="its tag should be shape/<layer>"):
        metadata.classify("shape/other", series_metadata.plugin_data.content)
    monkeypatch.delitem(kinds.KINDS, "shape")
    assert metadata.classify("shape/conv", series_metadata.plugin_data.content) is None


def test_metadata_built_by_the_kinds_is_the_same_json_as_before():
    assert json.loads(metadata.fields_metadata("stats", "conv").plugin_data.content) == {
        "fields": list(metadata.STATS_FIELDS),
        "kind": "stats",
        "layer": "conv",
        "version": metadata.FORMAT_VERSION,
    }
    assert metadata.fields_metadata("change", "a*b").summary_description == "per-filter change since the previous step of a\\*b"
    pool = metadata.pool_metadata(["0"], [2, 2, 1], [0.0, 1.0])
    assert json.loads(pool.plugin_data.content)["kind"] == "pool" and pool.summary_description == "pool inputs"


def _sheet_content(extra) -> bytes:
    layout = metadata.GridLayout(3, 3, 2, 2, 1)
    info = metadata.LayerInfo("strongest", "conv", "Conv2D", 0, [None, 4, 4, 2], layout, 2, 2, ["pool"], "epoch", tiles_per_filter=2)
    data = {**info.to_json(), "extra": extra}
    return json.dumps(data).encode()


def test_the_strongest_extra_is_typed_and_written_as_the_same_json():
    written = {
        "top_k": 2,
        "pool_size": 7,
        "receptive_field": {"size": [3, 3], "jump": [1, 1], "start": [-1, -1]},
        "patch": "receptive field",
        "patch_reason": "",
        "patch_size": [3, 3],
        "input_range": [-0.5, 2.0],
    }
    info = metadata.classify("strongest/conv", _sheet_content(written)).info
    extra = info.extra
    assert isinstance(extra, kinds.strongest.StrongestExtra) and extra.receptive_field == metadata.ReceptiveField((3, 3), (1, 1), (-1, -1))
    assert extra.input_range == (-0.5, 2.0) and extra.patch_size == (3, 3) and extra.pool_size == 7
    assert info.to_json()["extra"] == written
    with pytest.raises(dataclasses.FrozenInstanceError):
        extra.top_k = 3


def test_an_older_strongest_extra_reads_with_defaults_and_other_grids_have_none():
    extra = metadata.classify("strongest/conv", _sheet_content({"input_range": [0, 255]})).info.extra
    assert (extra.top_k, extra.pool_size, extra.receptive_field, extra.patch, extra.patch_size) == (2, 0, None, "whole input", None)
    assert extra.input_range == (0.0, 255.0)
    activations = metadata.LayerInfo("activations", "conv", "Conv2D", 0, [None, 4, 4, 2], metadata.GridLayout(4, 4, 1, 2, 1), 2, 2, ["a"], "epoch")
    assert activations.to_json()["extra"] == {}  # as every version wrote it
    assert metadata.LayerInfo.from_json(activations.to_json()).extra is None


@pytest.mark.parametrize("extra", [{"input_range": "ab"}, {"receptive_field": {"size": [3]}}, ["top_k"], {"patch_size": 3}])
def test_an_unreadable_strongest_extra_is_a_format_error_naming_it(extra):
    with pytest.raises(metadata.FormatError, match="extra"):
        metadata.classify("strongest/conv", _sheet_content(extra))


def test_a_kind_added_to_the_registry_is_written_read_back_and_listed_without_other_changes(tmp_path, monkeypatch):
    """A new tensor kind written with the activations: its module's ``KIND`` in the registry is all the writer, the reader and
    the plugin's listing need."""
    from helpers.plugin import get_json, make_client

    from tb_featuremaps import reader, render
    from tb_featuremaps.writer.summary import SummaryWriter

    added = kinds.TensorKind("shape", "a test kind", fields=("a", "b"), axes=("filters",), grid="activations", what="shapes")
    monkeypatch.setitem(kinds.KINDS, "shape", added)
    maps = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype(np.float32)
    drawn = render.draw(maps, max_filters=3, max_tile_size=4)
    layout = metadata.GridLayout.for_tiles(3, 4, 4)
    info = metadata.LayerInfo("activations", "conv", "Conv2D", 0, [None, 4, 4, 3], layout, 3, 3, ["p", "q"], "epoch")
    values = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)
    writer = SummaryWriter(str(tmp_path / "run"))
    for step in (0, 1):
        writer.write_layer(step, info, render.to_pngs(drawn, layout), {"stats": drawn.stats, "shape": values * (step + 1)}, images_copy=False)
    writer.close()

    conv = reader.load(tmp_path)["run"].layers["conv"]
    np.testing.assert_array_equal(conv.tensor("shape"), [values, 2 * values])
    np.testing.assert_array_equal(conv.tensor_at("shape", 1), 2 * values)
    assert conv.stats.shape == (2, 2, 3, len(metadata.STATS_FIELDS)) and conv.change is None
    listing = get_json(make_client(tmp_path), "runs")
    assert listing["kinds"]["shape"] == {**added.to_json(), "fields": ["a", "b"], "axes": ["filters"]}  # the panel is told of it
    assert listing["kinds"]["change"]["measure"] == ["response", "kernel"]
    (entry,) = listing["runs"][0]["layers"]
    assert entry["has_shape"] is True and entry["has_stats"] is True and entry["has_change"] is False
    monkeypatch.delitem(kinds.KINDS, "shape")
    assert reader.load(tmp_path)["run"].layers["conv"].tensor("shape") is None  # an unknown kind is skipped
