"""Standard PyTorch architectures and execution modes logged, read back, and served by a real TensorBoard.

ResNet-18, a MobileNetV2-style net (depthwise convolutions), a U-Net (transposed
convolutions), a Conv1d audio net, a ``torch.compile`` model, ``channels_last``
and autocast bfloat16 each log two steps (one SGD step between) into one log
dir; the reader reads every run back and TensorBoard serves each run's grids
and (with a pool) its strongest inputs.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import numpy as np
import torch
from helpers.tensorboard import LOADERS, fetch, fetch_json, serving
from helpers.torch_zoo import AudioNet, MobileNetV2Small, ResNet18, UNetSmall
from torch import nn

from tb_featuremaps import reader
from tb_featuremaps.torch import FeatureMapsLogger

GENERATOR = torch.Generator().manual_seed(0)
IMAGES = torch.rand(4, 3, 32, 32, generator=GENERATOR)
POOL = torch.rand(12, 3, 32, 32, generator=GENERATOR)
GRAY = torch.rand(3, 1, 32, 32, generator=GENERATOR)
WAVES = torch.randn(3, 1, 2000, generator=GENERATOR)


def _train_step(model: nn.Module, x: torch.Tensor) -> None:
    """One SGD step on a loss of the output (whatever its shape), so that step 1 differs from step 0."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    loss = model(x).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _log_two_steps(model: nn.Module, logdir, run_name: str, probes: torch.Tensor, train_model: nn.Module = None, **options) -> FeatureMapsLogger:
    with FeatureMapsLogger(model, logdir, probes=probes, run_name=run_name, max_filters=16, **options) as logger:
        assert logger.log(0)
        _train_step(train_model or model, probes)
        assert logger.log(1)
    return logger


CASES = {
    "resnet18": (ResNet18, IMAGES, {"pool": POOL, "top_k": 3}),
    "mobilenet": (MobileNetV2Small, IMAGES, {}),
    "unet": (UNetSmall, GRAY, {}),
    "audio": (AudioNet, WAVES, {}),
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The log dir with every run, and each run's logger."""
    logdir = tmp_path_factory.mktemp("zoo")
    loggers = {}
    with pytest.warns(UserWarning, match="draws the first 16 filters"):
        for name, (architecture, probes, options) in CASES.items():
            torch.manual_seed(0)
            loggers[name] = _log_two_steps(architecture(), logdir, name, probes, **options)
    torch.manual_seed(0)
    eager = UNetSmall()
    compiled = torch.compile(eager, backend="eager")  # dynamo's capture without inductor's C++ compile (slow on CPU)
    loggers["compiled"] = _log_two_steps(compiled, logdir, "compiled", GRAY)
    assert compiled._orig_mod is eager
    return logdir, loggers


def test_each_architecture_logs_its_layers_read_back(zoo):
    logdir, loggers = zoo
    runs = reader.load(str(logdir))
    assert sorted(runs) == sorted(loggers)
    resnet = runs["resnet18"]
    assert list(resnet.layers)[:3] == ["conv1", "maxpool", "layer1.0.conv1"]
    assert "layer4.1.conv2" in resnet.layers and "layer2.0.downsample.0" in resnet.layers
    assert len(resnet.layers) == 21  # 20 convolutions (3 of them 1x1 projections) and the max pool
    assert resnet.layers["layer4.1.conv2"].info.output_shape == [None, 512, 1, 1]
    mobilenet = runs["mobilenet"]
    depthwise = mobilenet.weights["blocks.0.block.3"]  # groups == channels: one tile per output channel
    assert mobilenet.layers["blocks.0.block.3"].info.output_shape == [None, 48, 16, 16] and depthwise.steps.tolist() == [0, 1]
    assert runs["unet"].layers["up"].info.layer_class == "ConvTranspose2d"
    assert runs["unet"].layers["up"].info.output_shape == [None, 8, 32, 32]
    assert runs["audio"].layers["features.0"].info.output_shape == [None, 8, 493]
    for name, run in runs.items():
        for path, layer in run.layers.items():
            assert layer.steps.tolist() == [0, 1], (name, path)
        first = next(iter(run.layers.values()))
        assert first.tiles(1, probe=0).std() > 0, name
        changed = [path for path, layer in run.layers.items() if not np.array_equal(layer.tiles(0, probe=0), layer.tiles(1, probe=0))]
        assert changed, f"{name}: training changed no layer's grid"


def test_a_compiled_module_logs_what_the_eager_one_does(zoo):
    logdir, _ = zoo
    runs = reader.load(str(logdir))
    assert list(runs["compiled"].layers) == list(runs["unet"].layers)  # no "_orig_mod." prefix
    for path, layer in runs["unet"].layers.items():
        np.testing.assert_array_equal(runs["compiled"].layers[path].tiles(1, probe=1), layer.tiles(1, probe=1))


def test_the_pool_finds_strongest_inputs_among_whole_inputs(zoo):
    logdir, _ = zoo
    run = reader.load(str(logdir))["resnet18"]
    strongest = run.strongest["conv1"]
    assert strongest.top_k == 3 and strongest.pool_size == 12
    assert strongest.receptive_field is None  # not computed for PyTorch modules: each input is shown whole
    inputs = strongest.field(1, "input")
    assert inputs.shape == (16, 3) and set(np.unique(inputs)) <= set(range(12))


@pytest.mark.filterwarnings("ignore:FeatureMapsLogger draws the first 16 filters")
def test_channels_last_logs_the_same_tiles_as_contiguous(tmp_path):
    torch.manual_seed(0)
    model = ResNet18().eval()
    plain = FeatureMapsLogger(model, tmp_path, probes=IMAGES, run_name="plain", max_filters=16)
    assert plain.log(0)
    plain.close()
    model = model.to(memory_format=torch.channels_last)
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    last = FeatureMapsLogger(model, tmp_path, probes=IMAGES, run_name="last", max_filters=16)
    assert last.log(0)
    last.close()
    runs = reader.load(str(tmp_path))
    for path, layer in runs["plain"].layers.items():
        difference = np.abs(runs["last"].layers[path].tiles(0, probe=0).astype(int) - layer.tiles(0, probe=0).astype(int))
        assert difference.max() <= 1, path  # the same maps: channels_last convolutions may round differently


def test_autocast_bfloat16_logs_float32_copies_close_to_full_precision(tmp_path):
    torch.manual_seed(0)
    model = MobileNetV2Small().eval()
    with FeatureMapsLogger(model, tmp_path, probes=IMAGES, run_name="fp32") as logger:
        assert logger.log(0)
    with FeatureMapsLogger(model, tmp_path, probes=IMAGES, run_name="bf16") as logger, torch.autocast("cpu", dtype=torch.bfloat16):
        assert logger.log(0)
    runs = reader.load(str(tmp_path))
    for path, layer in runs["fp32"].layers.items():
        low = runs["bf16"].layers[path].tiles(0, probe=0).astype(float)
        full = layer.tiles(0, probe=0).astype(float)
        assert np.corrcoef(low.ravel(), full.ravel())[0, 1] > 0.98, path
        assert np.abs(low - full).mean() < 4, path  # bfloat16 keeps 8 bits of mantissa: a few gray levels


def test_a_module_that_raises_on_one_layer_stops_before_anything_is_written(tmp_path):
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("shape mismatch in broken layer")

    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), Broken(), nn.Conv2d(4, 4, 3))
    logger = FeatureMapsLogger(model, tmp_path / "logs", probes=GRAY)
    with pytest.raises(ValueError, match=r"could not run on the probes \(3, 1, 32, 32\): RuntimeError: shape mismatch in broken layer"):
        logger.log(0)
    logger.close()
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("load_fast", LOADERS)
def test_tensorboard_serves_every_run(zoo, load_fast):
    logdir, loggers = zoo
    with serving(logdir, ["--load_fast", load_fast], runs=len(loggers)) as base:
        listed = {run["run"]: run for run in fetch_json(base + "/data/plugin/feature_maps/runs")["runs"]}
        assert sorted(listed) == sorted(loggers)
        for name, logger in loggers.items():
            assert [layer["layer"] for layer in listed[name]["layers"]] == logger.layer_paths
            layer = logger.layer_paths[-1]
            status, png = fetch(f"{base}/data/plugin/feature_maps/grid?run={name}&layer={layer}&step=1&probe=0")
            assert (status, png[:8]) == (200, b"\x89PNG\r\n\x1a\n"), name
        topk = fetch_json(base + "/data/plugin/feature_maps/topk?run=resnet18&layer=layer1.0.conv1&step=1")
        assert topk["step"] == 1 and len(topk["values"]) == 16 and len(topk["values"][0]) == 3
