"""Any training loop: a ``tf.GradientTape`` loop, a JAX loop and a PyTorch loop write what the Keras callback writes.

One small CNN (conv, ReLU, max-pool, conv, ReLU, average-pool, dense) on non-square
digits is built in Keras; its initial weights are copied into an equivalent
``torch.nn.Module`` (NCHW, ``[out, in, kh, kw]`` weights) and into a plain JAX
function (NHWC, HWIO kernels). Each producer logs the same probes through its
public API while its loop trains; at step 0 every run must show the tiles (to one
gray level) and the stats of ``FeatureMapsCallback`` on the same model.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
import warnings
from collections import OrderedDict

import numpy as np
import pytest
from helpers.models import mnist_digits
from helpers.tensorboard import TensorBoard, fetch_json, stop

from tb_featuremaps import reader
from tb_featuremaps.format import metadata


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # hidden or broken
        return False


HAS_TORCH, HAS_JAX = _installed("torch"), _installed("jax")
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason='PyTorch is not installed (pip install -e ".[torch]"): the PyTorch producer is optional')
needs_jax = pytest.mark.skipif(not HAS_JAX, reason="JAX is not installed (pip install jax)")

LAYERS = ["conv1", "pool1", "conv2", "pool2"]
HEIGHT, WIDTH = 28, 24  # not square, so that a swapped height and width cannot pass
STEPS = 4  # training steps of each loop; logged at 0, 2 and 4
LOGGED = [0, 2, 4]
LEARNING_RATE = 0.05
TOP_K = 4


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, list, np.ndarray]:
    """Training digits [64, 28, 24, 1], their labels, 3 probes NHWC, the probes' labels and a pool of 40 digits NHWC."""
    images, labels = mnist_digits(5000)  # 500 of each digit, in class order
    images = np.ascontiguousarray(images[:, :, 2:26])
    train, probes, pool = np.arange(64) * 78, [1234, 2345, 3456], np.arange(40) * 123 + 11  # every class; probes 2, 4 and 6
    return images[train], labels[train], images[probes], [str(label) for label in labels[probes].tolist()], images[pool]


def _keras_cnn():
    import keras

    return keras.Sequential(
        [
            keras.Input((HEIGHT, WIDTH, 1)),
            keras.layers.Conv2D(4, 5, padding="same", name="conv1"),
            keras.layers.ReLU(name="relu1"),
            keras.layers.MaxPooling2D(name="pool1"),
            keras.layers.Conv2D(8, 3, name="conv2"),
            keras.layers.ReLU(name="relu2"),
            keras.layers.AveragePooling2D(2, name="pool2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, name="logits"),
        ]
    )


def _keras_weights(model) -> dict[str, list[np.ndarray]]:
    return {name: [np.array(w) for w in model.get_layer(name).get_weights()] for name in ("conv1", "conv2", "logits")}


def _torch_cnn(weights: dict):
    """The same network as an ``nn.Module``, NCHW, with the Keras weights copied in (the first ReLU in place)."""
    import torch
    from torch import nn

    pooled = (HEIGHT // 2 - 2) // 2, (WIDTH // 2 - 2) // 2
    module = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, 4, 5, padding=2),
            relu1=nn.ReLU(inplace=True),  # changes conv1's output tensor: the logger must have copied it
            pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(4, 8, 3),
            relu2=nn.ReLU(),
            pool2=nn.AvgPool2d(2),
            flatten=nn.Flatten(),
            logits=nn.Linear(8 * pooled[0] * pooled[1], 10),
        )
    )
    dense, bias = weights["logits"]
    with torch.no_grad():
        for name in ("conv1", "conv2"):
            kernel, conv_bias = weights[name]
            getattr(module, name).weight.copy_(torch.from_numpy(np.transpose(kernel, (3, 2, 0, 1))))  # [kh, kw, in, out] -> [out, in, kh, kw]
            getattr(module, name).bias.copy_(torch.from_numpy(conv_bias))
        # Keras flattens (h, w, c), PyTorch (c, h, w)
        module.logits.weight.copy_(torch.from_numpy(dense.reshape(*pooled, 8, 10).transpose(3, 2, 0, 1).reshape(10, -1)))
        module.logits.bias.copy_(torch.from_numpy(bias))
    return module


def _jax_cnn(weights: dict):
    """The same network as plain JAX: ``params`` (HWIO kernels), ``features(params, x)`` (NHWC) and ``loss(params, x, y)``."""
    import jax
    import jax.numpy as jnp

    params = {name: {"w": jnp.asarray(w), "b": jnp.asarray(b)} for name, (w, b) in weights.items()}

    def conv(x, layer, padding):
        out = jax.lax.conv_general_dilated(x, layer["w"], (1, 1), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return out + layer["b"]

    def features(params, x):
        conv1 = conv(x, params["conv1"], "SAME")
        pool1 = jax.lax.reduce_window(jax.nn.relu(conv1), -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        conv2 = conv(pool1, params["conv2"], "VALID")
        pool2 = jax.lax.reduce_window(jax.nn.relu(conv2), 0.0, jax.lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4
        return conv1, pool1, conv2, pool2  # a tuple: jit returns a dict's keys sorted, and the writer keeps the order it is given

    def logits(params, x):
        flat = features(params, x)[-1].reshape(len(x), -1)
        return flat @ params["logits"]["w"] + params["logits"]["b"]

    def loss(params, x, y):
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits(params, x)), y[:, None], axis=1))

    return params, jax.jit(features), logits, jax.jit(jax.value_and_grad(loss))


def _batches(images, labels):
    for step in range(STEPS):
        yield step, images[16 * step : 16 * (step + 1)], labels[16 * step : 16 * (step + 1)]


# The loops, as a user writes them ---------------------------------------------------


def _keras_fit(logdir: str, weights: list, data) -> None:
    """The reference: ``FeatureMapsCallback`` in ``fit`` (its step 0 is logged before the first batch)."""
    import keras

    from tb_featuremaps import FeatureMapsCallback

    images, labels, probes, probe_labels, pool = data
    model = _keras_cnn()
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callback = FeatureMapsCallback(logdir, probes=probes, labels=probe_labels, run_name="keras_fit", pool=pool, top_k=TOP_K)
    model.fit(images, labels, batch_size=32, epochs=1, verbose=0, callbacks=[callback])


def _keras_loop(logdir: str, weights: list, data) -> None:
    """A ``tf.GradientTape`` loop logging through ``FeatureMapsLogger``."""
    import keras
    import tensorflow as tf

    from tb_featuremaps import FeatureMapsLogger

    images, labels, probes, probe_labels, pool = data
    model = _keras_cnn()
    model.set_weights(weights)
    optimizer = keras.optimizers.SGD(LEARNING_RATE)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    logger = FeatureMapsLogger(model, logdir, probes=probes, labels=probe_labels, run_name="keras_loop", pool=pool, top_k=TOP_K)
    for step, x, y in _batches(images, labels):
        if step % 2 == 0:
            assert logger.log(step)
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    assert logger.log(STEPS)
    logger.close()


def _jax_loop(logdir: str, weights: dict, data) -> None:
    """A plain JAX loop (no Keras): arrays through ``FeatureMapsWriter``."""
    import jax

    from tb_featuremaps import FeatureMapsWriter
    from tb_featuremaps.writer import LayerDescription

    images, labels, probes, probe_labels, pool = data
    params, features, _, loss_and_grads = _jax_cnn(weights)
    classes = {"conv1": "Conv2D", "pool1": "MaxPooling2D", "conv2": "Conv2D", "pool2": "AveragePooling2D"}
    layers = {name: LayerDescription(layer_class) for name, layer_class in classes.items()}

    def write(step: int) -> None:
        kernels = {name: params[name]["w"] for name in ("conv1", "conv2")}
        pooled = dict(zip(LAYERS, features(params, pool)))
        assert writer.write(step, dict(zip(LAYERS, features(params, probes))), kernels=kernels, layers=layers, pool_activations=pooled)

    with FeatureMapsWriter(logdir, probes=probes, labels=probe_labels, run_name="jax_loop", pool=pool, top_k=TOP_K) as writer:
        for step, x, y in _batches(images, labels):
            if step % 2 == 0:
                write(step)
            _, grads = loss_and_grads(params, x, y)
            params = jax.tree_util.tree_map(lambda p, g: p - LEARNING_RATE * g, params, grads)
        write(STEPS)


def _torch_loop(logdir: str, weights: dict, data):
    """A PyTorch loop logging through ``tb_featuremaps.torch``; returns the module."""
    import torch

    from tb_featuremaps.torch import FeatureMapsLogger

    images, labels, probes, probe_labels, pool = data
    module = _torch_cnn(weights)
    optimizer = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE)
    probes_nchw = torch.from_numpy(np.moveaxis(probes, -1, 1).copy())
    pool_nchw = np.moveaxis(pool, -1, 1).copy()
    logger = FeatureMapsLogger(module, logdir, probes=probes_nchw, labels=probe_labels, run_name="torch_loop", pool=pool_nchw, top_k=TOP_K)
    module.train()
    for step, x, y in _batches(images, labels):
        if step % 2 == 0:
            assert logger.log(step)
            assert module.training and all(sub.training for sub in module.modules()), "the training flags were not restored"
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(module(torch.from_numpy(np.moveaxis(x, -1, 1).copy())), torch.from_numpy(y))
        loss.backward()
        optimizer.step()
    assert logger.log(STEPS)
    logger.close()
    assert not any(sub._forward_hooks for sub in module.modules()), "hooks were left on the module"
    return module


@pytest.fixture(scope="module")
def loops(tmp_path_factory) -> dict:
    """The logdir with a run per producer, and the step-0 logits of each framework on the probes."""
    import keras

    logdir = str(tmp_path_factory.mktemp("loops"))
    data = _data()
    keras.utils.set_random_seed(3)
    reference = _keras_cnn()
    weights, by_name = reference.get_weights(), _keras_weights(reference)
    logits = {"keras": np.asarray(reference(data[2]))}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _keras_fit(logdir, weights, data)
        if keras.backend.backend() == "tensorflow":
            _keras_loop(logdir, weights, data)
        if HAS_JAX:
            _jax_loop(logdir, by_name, data)
            params, _, jax_logits, _ = _jax_cnn(by_name)
            logits["jax"] = np.asarray(jax_logits(params, data[2]))
        if HAS_TORCH:
            import torch

            logits["torch"] = _torch_cnn(by_name)(torch.from_numpy(np.moveaxis(data[2], -1, 1).copy())).detach().numpy()
            _torch_loop(logdir, by_name, data)
    problems = [str(warning.message) for warning in caught if "FeatureMaps" in str(warning.message)]
    assert not problems, problems  # no producer may warn (a failed step, a capped layer, a taken run folder)
    return {"logdir": logdir, "runs": reader.load(logdir), "logits": logits, "probes": data[2]}


LOOPS = [
    "keras_loop",
    pytest.param("jax_loop", marks=needs_jax),
    pytest.param("torch_loop", marks=needs_torch),
]


def _run(loops: dict, name: str):
    if name == "keras_loop" and name not in loops["runs"]:
        pytest.skip("tf.GradientTape needs Keras on its TensorFlow backend")
    return loops["runs"][name]


def test_the_copied_networks_compute_the_same_logits(loops):
    for framework, values in loops["logits"].items():
        np.testing.assert_allclose(values, loops["logits"]["keras"], rtol=1e-4, atol=1e-5, err_msg=framework)


@pytest.mark.parametrize("name", LOOPS)
def test_each_loop_logs_its_steps_and_layers(loops, name):
    run = _run(loops, name)
    assert list(run.layers) == LAYERS
    assert list(run.weights) == ["conv1", "conv2"]
    assert len(run.probe_images) == 3 and run.probe_labels == loops["runs"]["keras_fit"].probe_labels
    for path, layer in run.layers.items():
        assert layer.steps.tolist() == LOGGED, path
        assert np.isfinite(layer.stats).all(), path
        assert not np.allclose(layer.stats[0], layer.stats[-1]), f"{path}: the logs did not follow the training"
    for path, layer in run.weights.items():
        assert layer.steps.tolist() == LOGGED, path
        assert layer.pngs[0] != layer.pngs[-1], f"{path}: the kernels did not follow the training"


@pytest.mark.parametrize("name", LOOPS)
def test_each_loop_agrees_with_the_keras_callback_at_step_0(loops, name):
    run, expected = _run(loops, name), loops["runs"]["keras_fit"]
    assert expected.layers["conv1"].steps.tolist() == [0, 1]
    for got, want in zip(run.probe_images, expected.probe_images):
        np.testing.assert_array_equal(got, want)  # the probe pictures: NCHW probes drawn as the NHWC ones
    for table in ("layers", "weights"):
        for path, reference in getattr(expected, table).items():
            layer = getattr(run, table)[path]
            assert layer.info.layout == reference.info.layout, path
            assert (layer.info.filters_shown, layer.info.reduction, layer.info.normalization) == (
                reference.info.filters_shown,
                reference.info.reduction,
                reference.info.normalization,
            ), path
            for probe in range(len(layer.pngs[0])):
                got, want = layer.tiles(0, probe).astype(int), reference.tiles(0, probe).astype(int)
                assert got.shape == want.shape, path
                assert np.abs(got - want).max() <= 1, f"{table}/{path} probe {probe}: tiles differ by {np.abs(got - want).max()} gray levels"
                assert want.std() > 0, f"{table}/{path} is blank"
            if table == "layers":
                np.testing.assert_allclose(layer.stats[0], reference.stats[0], rtol=1e-4, atol=1e-6, err_msg=path)


@pytest.mark.parametrize("name", LOOPS)
def test_each_loop_finds_the_strongest_pool_inputs_the_callback_finds(loops, name):
    run, expected = _run(loops, name), loops["runs"]["keras_fit"]
    assert list(run.strongest) == LAYERS and len(run.pool) == 40
    np.testing.assert_array_equal(run.pool.pictures(), expected.pool.pictures())  # NCHW pool drawn as the NHWC one
    for path, reference in expected.strongest.items():
        layer = run.strongest[path]
        assert layer.steps.tolist() == LOGGED and layer.top_k == TOP_K
        values, want = layer.field(0, "value"), reference.field(0, "value")
        np.testing.assert_allclose(values, want, rtol=1e-4, atol=1e-5, err_msg=path)
        clear = np.diff(want, axis=1, prepend=np.inf, append=-np.inf)  # a rank whose value ties a neighbour's may swap
        distinct = (np.abs(clear[:, :-1]) > 1e-3) & (np.abs(clear[:, 1:]) > 1e-3)
        np.testing.assert_array_equal(layer.inputs(0)[distinct], reference.inputs(0)[distinct], err_msg=path)
        for field in ("row", "col"):
            np.testing.assert_array_equal(layer.field(0, field)[distinct], reference.field(0, field)[distinct], err_msg=f"{path} {field}")
        if name == "keras_loop":  # the same receptive fields: the same patches
            np.testing.assert_array_equal(layer.patches(0)[distinct], reference.patches(0)[distinct], err_msg=path)
        elif layer.receptive_field is None:
            assert layer.info.extra.patch == "whole input"
        change = run.layers[path].change
        assert np.isnan(change[0]).all() and np.isfinite(change[1:, :, metadata.CHANGE_FIELDS.index("response")]).all(), path


def test_tensorboard_lists_the_three_loops(loops):
    expected = {"keras_fit": [0, 1]}
    expected.update({name: LOGGED for name in loops["runs"] if name.endswith("_loop")})
    server = TensorBoard(loops["logdir"], ["--load_fast", "false"])
    try:
        base, deadline = server.url(), time.monotonic() + 60
        while True:
            runs = {run["run"]: run for run in fetch_json(base + "/data/plugin/feature_maps/runs")["runs"]}
            if set(runs) == set(expected) and all(len(runs[name]["layers"]) == len(LAYERS) for name in expected):
                break
            assert time.monotonic() < deadline, f"TensorBoard never listed {sorted(expected)}: {sorted(runs)}"
            time.sleep(0.5)
    finally:
        stop([server])
    if HAS_TORCH and HAS_JAX:
        assert {"jax_loop", "torch_loop"} <= set(runs)
    for name, steps in expected.items():
        layers = runs[name]["layers"]
        assert [layer["layer"] for layer in layers] == LAYERS, name
        assert runs[name]["probes"]["count"] == 3, name
        for layer in layers:
            assert (layer["step_count"], layer["first_step"], layer["last_step"]) == (len(steps), steps[0], steps[-1]), (name, layer["layer"])
            assert (layer["weights"] is not None) == layer["layer"].startswith("conv"), (name, layer["layer"])
            assert layer["has_stats"], (name, layer["layer"])
    classes = {name: [layer["class"] for layer in runs[name]["layers"]] for name in runs}
    if "torch_loop" in classes:
        assert classes["torch_loop"] == ["Conv2d", "MaxPool2d", "Conv2d", "AvgPool2d"]
        assert runs["torch_loop"]["layers"][0]["output_shape"] == [None, 4, HEIGHT, WIDTH]  # NCHW, as PyTorch computes it


# The PyTorch logger on its own -------------------------------------------------------


def test_importing_the_package_never_imports_torch():
    script = "import sys, tb_featuremaps, tb_featuremaps.writer, tb_featuremaps.reader; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


def _small():
    from torch import nn

    head = nn.Sequential(nn.Flatten(), nn.LazyLinear(4))
    return nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 3, 3), act=nn.ReLU(), pool=nn.MaxPool2d(2), head=head))


@needs_torch
def test_torch_layers_by_name_regex_class_and_object(tmp_path):
    from torch import nn

    from tb_featuremaps.torch import FeatureMapsLogger

    module = _small()
    assert FeatureMapsLogger(module, tmp_path).layer_paths == ["conv", "pool"]  # default: convolutions and pooling
    assert FeatureMapsLogger(module, tmp_path, layers=["head.1", "conv"]).layer_paths == ["conv", "head.1"]  # model order
    assert FeatureMapsLogger(module, tmp_path, layers=re.compile(r"p.*|head\.1")).layer_paths == ["pool", "head.1"]
    assert FeatureMapsLogger(module, tmp_path, layers=[nn.ReLU]).layer_paths == ["act"]
    assert FeatureMapsLogger(module, tmp_path, layers=[module.pool]).layer_paths == ["pool"]
    with pytest.raises(ValueError, match=r"'conv1', which is not a submodule of the Sequential\. Available modules: conv \(Conv2d\), act \(ReLU\)"):
        FeatureMapsLogger(module, tmp_path, layers=["conv1"])
    with pytest.raises(ValueError, match="layers is empty"):
        FeatureMapsLogger(module, tmp_path, layers=[])
    with pytest.raises(ValueError, match="the logged module itself"):
        FeatureMapsLogger(module, tmp_path, layers=[module])
    with pytest.raises(ValueError, match="found no convolution or pooling module"):
        FeatureMapsLogger(nn.Sequential(nn.Flatten(), nn.Linear(784, 2)), tmp_path)
    assert not list(tmp_path.iterdir()), "a misconfigured logger wrote something"


@needs_torch
def test_torch_misfitting_probes_raise_before_anything_is_written(tmp_path):
    import torch
    from torch import nn

    from tb_featuremaps.torch import FeatureMapsLogger

    logger = FeatureMapsLogger(_small(), tmp_path, probes=torch.zeros(2, 3, 28, 28))  # the module takes one channel
    with pytest.raises(ValueError, match=r"could not run on the probes \(2, 3, 28, 28\): RuntimeError: .*Pass probes= shaped like one batch"):
        logger.log(0)

    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.spare, self.merge = nn.Conv2d(1, 2, 3), nn.Conv2d(1, 2, 3), nn.Flatten(0, 1)

        def forward(self, x):
            return self.merge(self.conv(x))

    probes = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="spare did not run in the module's forward pass"):
        FeatureMapsLogger(Unused(), tmp_path, probes=probes, layers=["conv", "spare"]).trace()
    with pytest.raises(ValueError, match=r"cannot draw module 'merge' \(Flatten\): its output \(4, 6, 6\) is not \[2 probes, channels"):
        FeatureMapsLogger(Unused(), tmp_path, probes=probes, layers=["merge"]).trace()
    assert not list(tmp_path.iterdir())
    with pytest.warns(UserWarning, match="spare did not run .* not logged"):
        assert FeatureMapsLogger(Unused(), tmp_path, probes=probes).layer_paths == ["conv"]


@needs_torch
def test_torch_default_probes_are_nchw_digits_and_an_output_is_drawn_channels_first(tmp_path):
    from tb_featuremaps.torch import FeatureMapsLogger

    with FeatureMapsLogger(_small(), tmp_path, layers=["conv", "head.1"]) as logger:
        assert logger.log(0)
    run = reader.load(str(tmp_path))["feature_maps"]
    assert run.probe_labels == [str(digit) for digit in range(10)]
    assert run.probe_images[0].shape == (28, 28)  # [1, 28, 28] drawn as a 28 x 28 picture
    conv, head = run.layers["conv"], run.layers["head.1"]
    assert conv.info.output_shape == [None, 3, 26, 26] and (conv.info.filters_total, conv.info.layout.tile_height) == (3, 26)
    assert head.info.output_shape == [None, 4] and head.info.normalization == "per_layer"  # [N, features]: 1x1 tiles
    assert list(run.weights) == ["conv"]


@needs_torch
def test_torch_log_uses_eval_mode_no_grad_and_the_modules_dtype(tmp_path):
    import torch
    from torch import nn

    from tb_featuremaps.torch import FeatureMapsLogger

    seen = {}

    class Probe(nn.Module):
        def forward(self, x):
            seen.update(training=self.training, grad=torch.is_grad_enabled(), dtype=x.dtype)
            return x

    module = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3), norm=nn.BatchNorm2d(2), probe=Probe())).double()
    module.train()
    module.norm.eval()  # a submodule the user froze stays frozen
    running = module.norm.running_mean.clone()
    logger = FeatureMapsLogger(module, tmp_path, probes=np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32), layers=["conv", "norm"])
    assert logger.log(0) and logger.log(1)
    assert seen == {"training": False, "grad": False, "dtype": torch.float64}
    assert [sub.training for sub in module.modules()] == [True, True, False, True]
    assert torch.equal(module.norm.running_mean, running)
    assert not any(sub._forward_hooks for sub in module.modules())


@needs_torch
def test_torch_keyword_probes_a_module_called_twice_and_a_pool_with_indices(tmp_path):
    import torch
    from torch import nn

    from tb_featuremaps.torch import FeatureMapsLogger

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 3, 3, padding=1)
            self.pool = nn.MaxPool1d(2, return_indices=True)

        def forward(self, signal, scale):
            first = self.conv(signal)
            self.conv(first[:, :2] * 100)  # a second call: not what is logged
            return self.pool(first * scale)[0]

    module = TwoInputs()
    signal = torch.randn(2, 2, 16)
    with FeatureMapsLogger(module, tmp_path, probes={"signal": signal, "scale": torch.ones(2, 1, 1)}) as logger:
        assert logger.log(0)
    run = reader.load(str(tmp_path))["feature_maps"]
    conv = run.layers["conv"]
    assert conv.info.output_shape == [None, 3, 16] and conv.info.layout.tile_height == 8  # a 1-D map drawn as a strip
    expected = module.conv(signal).detach().numpy()
    np.testing.assert_allclose(conv.stats[0, :, :, 0], expected.min(axis=2), rtol=1e-6)
    assert run.layers["pool"].info.output_shape == [None, 3, 8]


@needs_torch
def test_torch_kernels_are_regrouped_to_spatial_in_out(tmp_path):
    import torch
    from torch import nn

    from tb_featuremaps.torch import module_kernel

    conv = nn.Conv2d(4, 6, (3, 2), groups=2)  # weight [6, 2, 3, 2]
    kernel = module_kernel(conv)
    assert kernel.shape == (3, 2, 2, 6)
    np.testing.assert_array_equal(kernel[1, 0, 1, 5], conv.weight[5, 1, 1, 0].item())
    transposed = nn.ConvTranspose2d(4, 6, (3, 2), groups=2)  # weight [4, 3, 3, 2]: in, out / groups
    kernel = module_kernel(transposed)
    assert kernel.shape == (3, 2, 2, 6)
    for out in range(6):
        group, within = divmod(out, 3)
        for inner in range(2):
            np.testing.assert_array_equal(kernel[..., inner, out], transposed.weight[group * 2 + inner, within].detach().numpy())
    assert module_kernel(nn.Conv3d(1, 2, 3)).shape == (3, 3, 3, 1, 2)
    assert module_kernel(nn.MaxPool2d(2)) is None
    with torch.no_grad():
        transposed.weight.zero_()
    assert not module_kernel(transposed).any()  # a copy of the current weights at each call


@needs_torch
def test_torch_a_failing_log_warns_and_training_goes_on(tmp_path):
    import torch
    from torch import nn

    from tb_featuremaps.torch import FeatureMapsLogger

    class Flaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fail = nn.Conv2d(1, 2, 3), False

        def forward(self, x):
            if self.fail:
                raise RuntimeError("out of memory")
            return self.conv(x)

    module = Flaky()
    logger = FeatureMapsLogger(module, tmp_path, probes=torch.rand(2, 1, 8, 8))
    assert logger.log(0)
    module.fail = True
    with pytest.warns(UserWarning, match=r"FeatureMapsLogger could not log step 1: RuntimeError: out of memory"):
        assert not logger.log(1)
    assert not module.conv._forward_hooks
    module.fail = False
    assert logger.log(2)
    logger.close()
    assert reader.load(str(tmp_path))["feature_maps"].layers["conv"].steps.tolist() == [0, 2]


@needs_torch
def test_torch_wrappers_are_unwrapped_and_lazy_convolutions_are_found(tmp_path):
    import torch
    from torch import nn

    from tb_featuremaps.torch import FeatureMapsLogger

    module = nn.Sequential(OrderedDict(conv=nn.LazyConv2d(2, 3), pool=nn.AvgPool2d(2), up=nn.ConvTranspose2d(2, 1, 2, stride=2)))
    for index, wrapped in enumerate([torch.compile(module), nn.DataParallel(module)]):
        with FeatureMapsLogger(wrapped, tmp_path, probes=torch.rand(2, 1, 9, 9), run_name=f"run{index}") as logger:
            assert logger.module is module
            assert logger.layer_paths == ["conv", "pool", "up"]  # no "_orig_mod." or "module." prefix
            assert logger.log(0)
    run = reader.load(str(tmp_path))["run1"]
    assert list(run.weights) == ["conv", "up"] and run.layers["up"].info.output_shape == [None, 1, 6, 6]
