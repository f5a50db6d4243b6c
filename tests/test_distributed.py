"""Under ``tf.distribute`` only the chief writes, once per step, and no worker waits on it.

Strategies need TensorFlow configured before it starts, so they train in
subprocesses (two logical CPUs for ``MirroredStrategy``, two worker processes on
loopback for ``MultiWorkerMirroredStrategy``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.models import fit, small_cnn
from helpers.processes import finish, free_ports, script_env, skip_without_backend

from tb_featuremaps import FeatureMapsCallback, FeatureMapsLogger, reader
from tb_featuremaps.keras import is_chief

TIMEOUT = 240

MIRRORED = """
import sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from helpers.models import mnist_digits, small_cnn
from tb_featuremaps import FeatureMapsCallback

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
with strategy.scope():
    model = small_cnn()
x, y = mnist_digits(64)
model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[FeatureMapsCallback(sys.argv[1], probes=x[:3])])
"""

MULTI_WORKER = """
import sys
import keras
import tensorflow as tf
from keras.src.backend.tensorflow import trainer

from helpers.models import mnist_digits, small_cnn
from tb_featuremaps import FeatureMapsCallback

strategy = tf.distribute.MultiWorkerMirroredStrategy()
assert strategy.num_replicas_in_sync == 2
x, y = mnist_digits(64)
with strategy.scope():
    model = small_cnn()


# Keras 3 bug (keras-team/keras#20585): fit() under MultiWorkerMirroredStrategy fails before any
# callback runs, first reducing a batch to build the model, then reducing the scalar logs on axis 0.
def build_from_local_batch(iterator=None, data_batch=None):
    with strategy.scope():
        model._symbolic_build(data_batch=(x[:1], y[:1]))


def mean_over_workers(values, strategy, reduction):
    return keras.tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)


model._maybe_symbolic_build = build_from_local_batch
trainer.reduce_per_replica = mean_over_workers
history = model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[FeatureMapsCallback(sys.argv[1], probes=x[:3])])
assert len(history.history["loss"]) == 2
"""


JAX_PROCESSES = """
import sys
import jax

jax.distributed.initialize(f"127.0.0.1:{sys.argv[2]}", num_processes=2, process_id=int(sys.argv[3]))
assert jax.process_count() == 2
from helpers.models import mnist_digits, small_cnn
from tb_featuremaps import FeatureMapsCallback

x, y = mnist_digits(64)
model = small_cnn()  # each process trains its own copy: the rule needs no sharded training to be checked
model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[FeatureMapsCallback(sys.argv[1], probes=x[:3])])
"""


def _start(script: str, *args: str, tf_config: dict | None = None, **variables: str) -> subprocess.Popen:
    env = script_env(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", **variables)
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _assert_one_run_logged_once(logdir: Path) -> None:
    assert [path.relative_to(logdir).parts[0] for path in logdir.rglob("events.*")] == ["feature_maps"]
    run = reader.load(str(logdir))["feature_maps"]
    assert list(run.layers) == ["conv1", "pool1", "conv2", "pool2"]
    for layer in run.layers.values():
        assert layer.steps.tolist() == [0, 1, 2]
        assert layer.tiles(-1, probe=2).std() > 0


@pytest.mark.parametrize(
    ("config", "chief"),
    [
        (None, True),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
        ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True),
        ({"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False),
        ({"cluster": {"chief": ["c:1"], "evaluator": ["e:1"]}, "task": {"type": "evaluator", "index": 0}}, False),
    ],
    ids=["no-cluster", "worker-0", "worker-1", "chief", "worker-beside-chief", "evaluator"],
)
def test_is_chief_follows_tf_config(monkeypatch, config, chief):
    monkeypatch.setenv("TF_CONFIG", json.dumps(config) if config else "")
    assert is_chief() is chief


def test_a_non_chief_worker_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}))
    fit(small_cnn(), [FeatureMapsCallback(str(tmp_path / "logs"))], epochs=2, samples=32)
    assert not (tmp_path / "logs").exists()


def test_all_ranks_makes_a_non_chief_worker_write_its_own_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}))
    fit(small_cnn(), [FeatureMapsCallback(str(tmp_path), run_name="worker1", all_ranks=True)], epochs=2, samples=32)
    assert reader.load(str(tmp_path))["worker1"].layers["conv1"].steps.tolist() == [0, 1, 2]


def test_the_logger_on_a_non_chief_worker_does_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}))
    logger = FeatureMapsLogger(small_cnn(), str(tmp_path / "logs"))
    assert not logger.writes
    assert logger.log(0) is False
    logger.close()
    assert not (tmp_path / "logs").exists()


def test_mirrored_strategy_on_two_devices(tmp_path):
    finish([_start(MIRRORED, str(tmp_path))], TIMEOUT)
    _assert_one_run_logged_once(tmp_path)


def test_multi_worker_mirrored_strategy_only_the_chief_writes(tmp_path):
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    logdirs = [tmp_path / "worker0", tmp_path / "worker1"]  # as on two machines without a shared disk
    workers = [
        _start(MULTI_WORKER, str(logdir), tf_config={"cluster": cluster, "task": {"type": "worker", "index": index}})
        for index, logdir in enumerate(logdirs)
    ]
    finish(workers, TIMEOUT)
    _assert_one_run_logged_once(logdirs[0])
    assert not logdirs[1].exists()


def test_jax_multi_process_only_process_zero_writes(tmp_path):
    skip_without_backend("jax")
    port = str(free_ports(1)[0])
    logdirs = [tmp_path / "process0", tmp_path / "process1"]
    jax_env = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    finish([_start(JAX_PROCESSES, str(logdir), port, str(index), **jax_env) for index, logdir in enumerate(logdirs)], TIMEOUT)
    _assert_one_run_logged_once(logdirs[0])
    assert not logdirs[1].exists()
