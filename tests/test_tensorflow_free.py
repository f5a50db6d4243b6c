"""A PyTorch job, the reader and the command line never import TensorFlow or Keras; the Keras producers say what to install."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.processes import NO_TENSORFLOW, run_script, script_env

ROOT = Path(__file__).resolve().parents[1]

needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason='PyTorch is not installed (pip install -e ".[torch]"): the PyTorch producer is optional'
)

PYTORCH_RUN = r"""
import json, sys
import torch
from torch import nn
from tb_featuremaps import reader
from tb_featuremaps.export import cli
from tb_featuremaps.torch import FeatureMapsLogger

torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))
optimizer = torch.optim.SGD(model.parameters(), 0.1)
logdir = sys.argv[1]
logger = FeatureMapsLogger(model, logdir, pool=torch.rand(16, 1, 28, 28), top_k=3)
for step in range(3):
    logger.log(step)
    loss = model(torch.rand(8, 1, 28, 28)).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
logger.close()
run = reader.load(logdir)["feature_maps"]
status = cli.main(["list", logdir])
print(json.dumps({
    "steps": run.layers["0"].steps.tolist(),
    "strongest": sorted(run.strongest),
    "cli": status,
    "imported": sorted(name for name in ("tensorflow", "keras") if name in sys.modules),
}))
"""


@needs_torch
def test_a_pytorch_run_with_a_pool_read_back_and_listed_never_imports_tensorflow(tmp_path):
    *listing, last = run_script(PYTORCH_RUN, str(tmp_path / "logs"), env=script_env(ROOT), cwd=ROOT).strip().splitlines()
    found = json.loads(last)
    assert found == {"steps": [0, 1, 2], "strongest": ["0", "2"], "cli": 0, "imported": []}
    assert any("Conv2d" in line for line in listing)  # the command line's listing of the run


@pytest.mark.parametrize("statement", ["from tb_featuremaps import FeatureMapsCallback", "import tb_featuremaps.keras"])
def test_the_keras_producers_without_keras_name_the_extra_to_install(statement):
    done = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW + statement], capture_output=True, text=True, timeout=120, cwd=ROOT, env=script_env(ROOT)
    )
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("ImportError: the Keras producers (FeatureMapsCallback, FeatureMapsLogger) need Keras"), done.stderr[-2000:]
    assert 'pip install "tb-featuremaps[tensorflow]"' in error


def test_without_keras_the_writer_reader_and_command_line_still_work(tmp_path):
    script = (
        NO_TENSORFLOW
        + r"""
import numpy as np
from tb_featuremaps import FeatureMapsWriter, reader
from tb_featuremaps.export import cli
writer = FeatureMapsWriter(sys.argv[1], probes=np.zeros((2, 8, 8, 1), np.float32))
writer.write(0, {"conv": np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype(np.float32)})
writer.close()
assert reader.load(sys.argv[1])["feature_maps"].layers["conv"].steps.tolist() == [0]
sys.exit(cli.main(["list", sys.argv[1]]))
"""
    )
    assert "conv" in run_script(script, str(tmp_path), env=script_env(ROOT), cwd=ROOT)
