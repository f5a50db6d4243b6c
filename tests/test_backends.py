"""The callback on the other Keras 3 backends: JAX and PyTorch write what TensorFlow writes.

Each backend trains in its own process (Keras fixes its backend at import) with
TensorFlow made unimportable, so nothing on the write path may need it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers.processes import run_on_backend, skip_without_backend
from tensorboard.backend.event_processing import event_accumulator

from tb_featuremaps import reader

TRAIN = """
import sys, warnings
import keras
from helpers.models import train_logdir

assert keras.backend.backend() == sys.argv[2], keras.backend.backend()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    train_logdir(sys.argv[1], epochs=2)
problems = [str(w.message) for w in caught if "FeatureMapsCallback" in str(w.message)]
assert not problems, problems
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
"""


def _tags(run_dir: str) -> set:
    accumulator = event_accumulator.EventAccumulator(run_dir, size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return set(accumulator.Tags()["tensors"])


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_writes_the_same_format_as_tensorflow(backend, trained_logdir, tmp_path):
    skip_without_backend(backend)
    run_on_backend(backend, TRAIN, str(tmp_path / "logs"), backend, scratch=tmp_path)
    expected = reader.load(trained_logdir)["feature_maps"]
    runs = reader.load(str(tmp_path / "logs"))
    assert list(runs) == ["feature_maps"]
    got = runs["feature_maps"]

    assert got.probe_labels == expected.probe_labels
    assert [image.shape for image in got.probe_images] == [image.shape for image in expected.probe_images]
    assert list(got.layers) == list(expected.layers) == ["conv1", "pool1", "conv2", "pool2"]
    assert list(got.weights) == list(expected.weights) == ["conv1", "conv2"]
    for table in ("layers", "weights"):
        for path, layer in getattr(got, table).items():
            reference = getattr(expected, table)[path]
            assert layer.info == reference.info, path  # class, shapes, layout, filters, labels, step unit
            assert layer.steps.tolist() == [0, 1, 2]
            assert layer.tiles(-1, probe=0).shape == reference.tiles(-1, probe=0).shape
            assert layer.tiles(-1, probe=0).std() > 0, f"{path} is blank"
    for path, layer in got.layers.items():
        assert layer.stats.shape[1:] == expected.layers[path].stats.shape[1:]
        assert np.isfinite(layer.stats).all()
        assert not np.array_equal(layer.stats[0], layer.stats[-1]), f"{path} did not change while training"
    assert _tags(str(tmp_path / "logs" / "feature_maps")) == _tags(os.path.join(trained_logdir, "feature_maps"))


POOLED = """
import sys
import keras
from helpers.models import mnist_digits, train_logdir

assert keras.backend.backend() == sys.argv[2], keras.backend.backend()
train_logdir(sys.argv[1], epochs=1, pool=mnist_digits(5000)[0][::125], top_k=4)
assert "tensorflow" not in sys.modules, "TensorFlow was imported"
"""


@pytest.fixture(scope="module")
def pooled_logdir(tmp_path_factory) -> str:
    """The TensorFlow reference: the small CNN with a pool of 40 digits (every class), top 4."""
    from helpers.models import mnist_digits, train_logdir

    return train_logdir(tmp_path_factory.mktemp("pooled"), epochs=1, pool=mnist_digits(5000)[0][::125], top_k=4)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_finds_strongest_inputs_as_tensorflow_does(backend, pooled_logdir, tmp_path):
    skip_without_backend(backend)
    run_on_backend(backend, POOLED, str(tmp_path / "logs"), backend, scratch=tmp_path)
    got, expected = (reader.load(logdir)["feature_maps"] for logdir in (str(tmp_path / "logs"), pooled_logdir))
    assert list(got.strongest) == list(expected.strongest) == ["conv1", "pool1", "conv2", "pool2"]
    np.testing.assert_array_equal(got.pool.pictures(), expected.pool.pictures())
    for path, layer in got.strongest.items():
        reference = expected.strongest[path]
        assert layer.info == reference.info, path  # the receptive field from the graph, the sheet's layout, k, the pool's range
        assert layer.receptive_field is not None, path
        inputs = layer.inputs(-1)
        assert inputs.shape == (layer.info.filters_shown, 4) and ((inputs >= 0) & (inputs < 40)).all(), path
        assert layer.patches(-1).std() > 0, f"{path}'s patches are blank"
    for path, layer in got.layers.items():
        assert np.isnan(layer.change[0]).all() and np.isfinite(layer.change[1:, :, 0]).all(), path
    assert _tags(str(tmp_path / "logs" / "feature_maps")) == _tags(os.path.join(pooled_logdir, "feature_maps"))


BATCHES = """
import sys
import keras
from helpers.models import train_logdir
from tb_featuremaps import FeatureMapsCallback

train_logdir(sys.argv[1], epochs=2, update_freq=3, layers=["conv1"])  # 4 batches an epoch
dispatch = keras.callbacks.CallbackList([FeatureMapsCallback(sys.argv[1]), FeatureMapsCallback(sys.argv[1], update_freq=3)])
per_epoch = keras.callbacks.CallbackList([FeatureMapsCallback(sys.argv[1])])
print("async", per_epoch._async_train, dispatch._async_train)
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_logs_every_n_batches_mid_training(backend, tmp_path):
    skip_without_backend(backend)
    output = run_on_backend(backend, BATCHES, str(tmp_path / "logs"), scratch=tmp_path)
    conv1 = reader.load(str(tmp_path / "logs"))["feature_maps"].layers["conv1"]
    assert conv1.steps.tolist() == [0, 3, 6, 8]  # as on TensorFlow, not only the first and last
    assert len({conv1.pngs[index][0] for index in range(4)}) == 4  # each a different state of the filters
    if backend == "jax":  # per-epoch logging leaves Keras' async batch dispatch on; per-batch logging needs it off
        assert "async True False" in output
