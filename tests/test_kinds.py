"""The series kinds: one module each, one registry that the format's readers and writers consult."""

from __future__ import annotations

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
    added = kinds.TensorKind("shape", "a test kind", fields=("a", "b"), rank=2, grid="activations", what="shapes")
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
