"""Under ``torch.distributed`` only rank 0 logs, once per step, and no rank waits on it (``docs/distributed.md``).

Each rank is its own process, started as torchrun starts them (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), on CPU with the gloo backend.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from helpers.processes import finish, free_ports, run_script, script_env

from tb_featuremaps import distributed, reader

pytest.importorskip("torch")

TIMEOUT = 180

DDP = """
import json, sys
import torch
import torch.distributed as dist
from torch import nn
from tb_featuremaps.torch import FeatureMapsLogger

logdir, out, variant = sys.argv[1:4]
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(4 * 14 * 14, 10)
        self.probe_passes = 0  # forward passes without gradients: the logger's

    def forward(self, x):
        self.probe_passes += not torch.is_grad_enabled()
        return self.head(self.pool(torch.relu(self.norm(self.conv(x)))).flatten(1))


net = Net()
if variant == "sync_bn":
    # On CPU, DDP refuses SyncBatchNorm and SyncBatchNorm's training-mode forward raises (GPUs only): this
    # variant logs the bare model, in training mode, with the process group up, and does not train.
    # A forward pass that synchronised would raise here, or hang with rank 1 already at the barrier.
    model = net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert isinstance(net.norm, nn.SyncBatchNorm)
else:
    model = nn.parallel.DistributedDataParallel(net)
extra = {"all_ranks": True, "run_name": f"rank{rank}"} if variant == "all_ranks" else {}
logger = FeatureMapsLogger(model, logdir, probes=torch.rand(3, 1, 28, 28), **extra)
optimizer = torch.optim.SGD(model.parameters(), 0.1)
accepted = []
for step in range(6):
    if step % 2 == 0:
        accepted.append(logger.log(step))
    if variant != "sync_bn":
        x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
accepted.append(logger.log(6))
logger.close()
dist.barrier()
with open(f"{out}/rank{rank}.json", "w") as file:
    json.dump({"probe_passes": net.probe_passes, "accepted": accepted, "writes": logger.writes, "training": net.training}, file)
dist.destroy_process_group()
"""


def _run_ranks(tmp_path: Path, variant: str) -> tuple[Path, list[dict]]:
    """Runs the DDP script on two ranks (killed after ``TIMEOUT`` s: a hang fails); returns the log dir and each rank's report."""
    logdir, out = tmp_path / "logs", tmp_path / "out"
    out.mkdir()
    port = str(free_ports(1)[0])
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", DDP, str(logdir), str(out), variant],
            env=script_env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    finish(ranks, TIMEOUT)
    return logdir, [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(2)]


def _runs(logdir: Path) -> set[str]:
    return {path.parent.relative_to(logdir).as_posix() for path in logdir.rglob("events.*")}


@pytest.mark.parametrize("variant", ["ddp", "sync_bn"])
def test_ddp_writes_one_run_from_rank_zero_only(tmp_path, variant):
    logdir, (rank0, rank1) = _run_ranks(tmp_path, variant)
    assert _runs(logdir) == {"feature_maps"}
    run = reader.load(str(logdir))["feature_maps"]
    assert list(run.layers) == ["conv", "pool"]
    for layer in run.layers.values():
        assert layer.steps.tolist() == [0, 2, 4, 6]  # as on one process
    assert run.layers["conv"].tiles(-1, probe=2).std() > 0
    assert rank0 == {"probe_passes": 4, "accepted": [True] * 4, "writes": True, "training": True}
    assert rank1 == {"probe_passes": 0, "accepted": [False] * 4, "writes": False, "training": True}


def test_all_ranks_gives_each_rank_its_own_run(tmp_path):
    logdir, reports = _run_ranks(tmp_path, "all_ranks")
    assert _runs(logdir) == {"rank0", "rank1"}
    runs = reader.load(str(logdir))
    for name in ("rank0", "rank1"):
        assert runs[name].layers["conv"].steps.tolist() == [0, 2, 4, 6]
    assert [report["probe_passes"] for report in reports] == [4, 4]


@pytest.mark.parametrize(
    ("env", "rank"),
    [({}, None), ({"RANK": "0"}, 0), ({"RANK": "1"}, 1), ({"RANK": ""}, None)],
    ids=["no-rank", "rank-0", "rank-1", "empty"],
)
def test_torchrun_rank_counts_before_the_process_group_starts(monkeypatch, env, rank):
    import torch  # noqa: F401  (the rule consults torch only in a process that imported it)

    monkeypatch.delenv("RANK", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert distributed.torch_rank() == rank
    assert distributed.is_chief() is (rank in (None, 0))


def test_a_jax_process_other_than_zero_is_not_the_chief(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax._src.xla_bridge", types.SimpleNamespace(backends_are_initialized=lambda: True))
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(process_index=lambda: 1))
    assert distributed.jax_process_index() == 1
    assert not distributed.is_chief()
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(process_index=lambda: 0))
    assert distributed.is_chief()


def test_deciding_imports_no_framework():
    script = (
        "import sys\n"
        "from tb_featuremaps import distributed\n"
        "assert distributed.is_chief()\n"
        "print(sorted({'torch', 'jax', 'tensorflow', 'keras'} & set(sys.modules)))\n"
    )
    assert run_script(script, env=script_env(RANK="1")).strip() == "[]"  # RANK alone (no torch imported) says nothing


def test_a_process_that_only_imported_jax_does_not_start_it():
    script = (
        "import jax\n"
        "from jax._src import xla_bridge\n"
        "from tb_featuremaps import distributed\n"
        "assert distributed.is_chief() and distributed.jax_process_index() is None\n"
        "print(xla_bridge.backends_are_initialized())\n"
    )
    # Asking would have started JAX's backends (and taken a GPU's memory).
    assert run_script(script, env=script_env(JAX_PLATFORMS="cpu")).strip() == "False"
