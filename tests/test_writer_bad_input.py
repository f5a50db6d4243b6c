"""``FeatureMapsWriter`` refuses at its API boundary what it could not use: a ValueError naming the argument, before anything is written."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tb_featuremaps import FeatureMapsWriter, reader
from tb_featuremaps.format import metadata
from tb_featuremaps.writer import LayerDescription

PROBES = np.zeros((2, 8, 8, 1), np.float32)
POOL = np.random.default_rng(0).random((5, 8, 8, 1), dtype=np.float32)
Field = metadata.ReceptiveField


def maps(count: int = 2, filters: int = 4) -> np.ndarray:
    return np.random.default_rng(count * 10 + filters).normal(size=(count, 6, 6, filters)).astype(np.float32)


@pytest.mark.parametrize(
    "pool, message",
    [
        (np.zeros(5, np.float32), r"pool= is shaped \(5,\)"),
        (np.zeros((5, 7), np.float32), r"pool= is shaped \(5, 7\)"),
        (np.zeros((5, 2, 8, 8, 1), np.float32), r"pool= is shaped \(5, 2, 8, 8, 1\)"),
        ([[[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.0]]], r"pool= is shaped \(2, 2\) \(a list is one array per model input"),
    ],
)
def test_a_pool_without_pictures_is_refused_at_construction(tmp_path, pool, message):
    with pytest.raises(ValueError, match=message):
        FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], pool=pool)


GOOD = {"activations": {"conv": maps()}}
WITH_POOL = {"activations": {"conv": maps()}, "pool_activations": {"conv": maps(5)}}


@pytest.mark.parametrize(
    "write, message",
    [
        (
            {"activations": {"conv": maps()}, "pool_activations": {"conv": maps(9)}},
            r"\['conv'\] is for 9 inputs but the pool holds 5",
        ),
        ({"activations": {"conv": maps()}, "pool_activations": {"conv": maps(3)}}, r"is for 3 inputs but the pool holds 5"),
        ({"activations": {"conv": maps(2, 3)}, "pool_activations": {"conv": maps(5, 5)}}, r"has 5 filters but activations\['conv'\] has 3"),
        ({"activations": {"conv": maps()}, "pool_activations": {"other": maps(5)}}, r"pool_activations= holds 'other', which activations= does not"),
        ({"activations": {"conv": maps(40)}}, r"activations\['conv'\] has shape \(40, 6, 6, 4\); pass each layer's output for the 2 probes"),
        ({"activations": {"conv": np.zeros(2, np.float32)}}, r"activations\['conv'\] has shape \(2,\)"),
        ({"activations": {"conv": maps(2, 0)}}, r"with 0 channels"),
        ({"activations": {3: maps()}}, r"activations= is keyed by 3; key each layer by its path"),
        ({"activations": [maps()]}, r"activations= must be a dict"),
        ({"activations": {"conv": np.array([["a"], ["b"]])}}, r"activations\['conv'\] is <U1; pass numeric arrays"),
        ({**WITH_POOL, "layers": {"conv": LayerDescription(receptive_field=Field((0, 0), (1, 1), (0, 0)))}}, r"size and jump must be positive"),
        ({**WITH_POOL, "layers": {"conv": LayerDescription(receptive_field=Field((3, -3), (1, 1), (0, 0)))}}, r"size and jump must be positive"),
        ({**WITH_POOL, "layers": {"conv": LayerDescription(receptive_field=Field((3, 3), (0, 1), (0, 0)))}}, r"size and jump must be positive"),
        ({**WITH_POOL, "layers": {"conv": LayerDescription(receptive_field=Field((3.5, 3), (1, 1), (0, 0)))}}, r"1 or 2 integers each"),
        ({**WITH_POOL, "layers": {"conv": LayerDescription(receptive_field=(3, 3))}}, r"must be a metadata.ReceptiveField"),
        ({**WITH_POOL, "layers": {"conv": LayerDescription(receptive_input=3)}}, r"receptive_input is 3 but the pool has 1 input"),
        ({**GOOD, "layers": {"conv": LayerDescription(layer_class=3)}}, r"layer_class and .patch_reason must be strings"),
        ({**GOOD, "layers": {"conv": LayerDescription(output_shape="x")}}, r"output_shape must be a list of sizes"),
        ({**GOOD, "layers": {"conv": "Conv2D"}}, r"layers\['conv'\] is str; pass a LayerDescription"),
        ({**GOOD, "kernels": {7: np.zeros((3, 3, 1, 4))}}, r"kernels= is keyed by 7"),
    ],
)
def test_what_write_cannot_use_is_refused_naming_the_argument_and_later_steps_still_log(tmp_path, write, message):
    writer = FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], pool=POOL, background=False)
    with pytest.raises(ValueError, match=message):
        writer.write(0, **write)
    assert writer.write(1, {"conv": maps()}, pool_activations={"conv": maps(5)})
    writer.close()
    run = reader.load(tmp_path)["feature_maps"]
    assert run.layers["conv"].steps.tolist() == [1] and run.strongest["conv"].steps.tolist() == [1]


@pytest.mark.parametrize("step, message", [(2**63, r"step 9223372036854775808 is too large.*up to 2\*\*63 - 1"), (-1, r"non-negative")])
def test_steps_outside_int64_are_refused_and_later_steps_still_log(tmp_path, step, message):
    writer = FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], background=False)
    with pytest.raises(ValueError, match=message):
        writer.write(step, {"conv": maps()})
    assert writer.write(2**63 - 1, {"conv": maps()})
    writer.close()
    assert reader.load(tmp_path)["feature_maps"].layers["conv"].steps.tolist() == [2**63 - 1]


def test_a_receptive_field_far_larger_than_the_input_draws_whole_inputs_instead_of_allocating_its_size(tmp_path):
    huge = LayerDescription(receptive_field=Field((100_000, 100_000), (1, 1), (0, 0)))
    with FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], pool=POOL, background=False) as writer:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert writer.write(0, {"conv": maps()}, layers={"conv": huge}, pool_activations={"conv": maps(5)})
    extra = reader.load(tmp_path)["feature_maps"].strongest["conv"].info.extra
    assert extra.receptive_field.size == (100_000, 100_000) and extra.patch_size == (8, 8)
