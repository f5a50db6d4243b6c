"""Bytes per step: the Images-dashboard copies written by default and the ``max_step_bytes`` budget, read back from the event files."""

from __future__ import annotations

import glob
import os
import warnings

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_file_loader

from tb_featuremaps import FeatureMapsWriter, reader
from tb_featuremaps.format import metadata
from tb_featuremaps.writer import LayerDescription

PROBES = 4


def _maps(step: int, size: int = 16, filters: int = 8) -> dict:
    rng = np.random.default_rng(step)
    return {
        "conv": rng.random((PROBES, size, size, filters), dtype=np.float32),
        "pool": rng.random((PROBES, size // 2, size // 2, filters), dtype=np.float32),
    }


def _write(tmp_path, steps: int = 3, **arguments) -> tuple[str, list]:
    probes = np.random.default_rng(0).random((PROBES, 8, 8, 1), dtype=np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with FeatureMapsWriter(str(tmp_path), probes, [f"p{i}" for i in range(PROBES)], run_name="run", **arguments) as writer:
            for step in range(steps):
                assert writer.write(step, _maps(step), layers={"conv": LayerDescription("Conv2D"), "pool": LayerDescription("MaxPooling2D")})
    return writer.run_dir, [str(warning.message) for warning in caught]


def _images_copies(run_dir: str) -> dict:
    """``{(tag, step): number of PNGs}`` of every Images-plugin value."""
    plugins, copies = {}, {}
    for path in sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name:
                    plugins[value.tag] = value.metadata.plugin_data.plugin_name
                if plugins.get(value.tag) == "images":
                    copies[value.tag, event.step] = len(value.tensor.string_val) - metadata.IMAGE_HEADER
    return copies


def _panel_series(run_dir: str) -> dict:
    run = reader.load(os.path.dirname(run_dir))["run"]
    return {path: (layer.steps.tolist(), [list(pngs) for pngs in layer.pngs], layer.stats.tobytes()) for path, layer in run.layers.items()}


def test_default_writes_the_first_probes_images_copy_only(tmp_path):
    run_dir, messages = _write(tmp_path)
    copies = _images_copies(run_dir)
    assert set(copies) == {(metadata.images_tag(metadata.KIND_ACTIVATIONS, layer), step) for layer in ("conv", "pool") for step in range(3)}
    assert set(copies.values()) == {1}
    assert not [message for message in messages if "max_step_bytes" in message]
    run = reader.load(str(tmp_path))["run"]
    assert all(len(pngs) == PROBES for layer in run.layers.values() for pngs in layer.pngs)  # the panel's series keep every probe


@pytest.mark.parametrize(("write_images", "expected"), [(True, {PROBES}), (False, set())])
def test_write_images_true_copies_every_probe_and_false_none(tmp_path, write_images, expected):
    run_dir, _ = _write(tmp_path, write_images=write_images)
    assert set(_images_copies(run_dir).values()) == expected


def test_the_first_probes_copy_is_the_panels_first_grid(tmp_path):
    run_dir, _ = _write(tmp_path, steps=1)
    first = reader.load(str(tmp_path))["run"].layers["conv"].pngs[0][0]
    for path in glob.glob(os.path.join(run_dir, "events.out.tfevents.*")):
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.tag == metadata.images_tag(metadata.KIND_ACTIVATIONS, "conv"):
                    assert list(value.tensor.string_val)[metadata.IMAGE_HEADER :] == [first]


def test_a_budget_no_rung_meets_takes_the_whole_ladder_warns_once_and_loses_no_probe_or_stat(tmp_path):
    within, _ = _write(tmp_path / "within", write_images=True)
    over, messages = _write(tmp_path / "over", write_images=True, max_step_bytes=1000)
    budget = [message for message in messages if "max_step_bytes" in message]
    assert len(budget) == 1
    for knob in ("max_step_bytes=1000", "write_images=False", "max_tile_size=8", "max_filters", "'conv'", "Even so"):
        assert knob in budget[0]
    assert _images_copies(over) == {}  # from the first step on
    run, unreduced = reader.load(str(tmp_path / "over"))["run"], reader.load(str(tmp_path / "within"))["run"]
    assert run.layers["conv"].info.reduced == {"max_tile_size": 8} and run.layers["pool"].info.reduced == {}  # pool's 8x8 maps fit
    assert (run.layers["conv"].info.layout.tile_height, unreduced.layers["conv"].info.layout.tile_height) == (8, 16)
    for path, layer in run.layers.items():
        assert all(len(pngs) == PROBES for pngs in layer.pngs)  # every probe, every step
        np.testing.assert_array_equal(layer.stats, unreduced.layers[path].stats)  # stats at full resolution, untouched


def test_a_later_step_over_the_budget_warns_once_and_keeps_the_first_steps_drawing(tmp_path):
    probes = np.zeros((PROBES, 8, 8, 1), np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with FeatureMapsWriter(str(tmp_path), probes, run_name="run", max_step_bytes=60_000) as writer:
            writer.write(0, {name: np.zeros_like(maps) for name, maps in _maps(0, size=64, filters=16).items()})  # compresses to little
            for step in (1, 2):
                writer.write(step, _maps(step, size=64, filters=16))  # noise: over the budget
    budget = [str(w.message) for w in caught if "max_step_bytes" in str(w.message)]
    assert len(budget) == 1 and "step 1 logged" in budget[0] and "chosen at the run's first step stays" in budget[0]
    assert {step for _, step in _images_copies(writer.run_dir)} == {0, 1}  # the copies go from the step after
    run = reader.load(str(tmp_path))["run"]
    assert run.layers["conv"].info.reduced == {} and run.layers["conv"].info.layout.tile_height == 64


def test_a_step_under_budget_is_unchanged(tmp_path):
    unbudgeted, _ = _write(tmp_path / "none", max_step_bytes=None)
    budgeted, messages = _write(tmp_path / "budget", max_step_bytes=10 * 2**20)
    assert not [message for message in messages if "max_step_bytes" in message]
    assert _images_copies(budgeted) == _images_copies(unbudgeted)
    assert _panel_series(budgeted) == _panel_series(unbudgeted)


def test_the_budget_holds_across_close_and_a_new_run_starts_afresh(tmp_path):
    probes = np.zeros((PROBES, 8, 8, 1), np.float32)
    writer = FeatureMapsWriter(str(tmp_path), probes, run_name="run", max_step_bytes=1000)
    with pytest.warns(UserWarning, match="max_step_bytes"):  # given on this thread by close() at the latest
        writer.write(0, _maps(0))
        writer.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        writer.write(1, _maps(1))  # a closed and reopened writer does not warn again
    writer.close()
    assert _images_copies(writer.run_dir) == {}  # the first step's decision holds for the reopened file too
