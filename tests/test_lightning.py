"""``tb_featuremaps.lightning.FeatureMapsCallback`` in real ``Trainer.fit`` runs, read back with the reader."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

import pytest

pytest.importorskip("pytorch_lightning")

import torch
from helpers.lightning import TinyNet, loader, trainer
from helpers.processes import script_env
from pytorch_lightning.loggers import TensorBoardLogger

from tb_featuremaps import lightning, reader
from tb_featuremaps.lightning import FeatureMapsCallback

PROBES = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
TIMEOUT = 240


def _runs(logdir: Path) -> dict[str, list[int]]:
    """Every feature-maps run under ``logdir`` with the steps of its first layer."""
    return {name: next(iter(run.layers.values())).steps.tolist() for name, run in reader.load(str(logdir)).items()}


def _event_dirs(logdir: Path) -> set[str]:
    return {path.parent.relative_to(logdir).as_posix() for path in logdir.rglob("events.*")}


def test_fit_logs_at_start_and_every_epoch_beside_the_scalars(tmp_path):
    model, callback = TinyNet(), FeatureMapsCallback(probes=PROBES)
    fit = trainer(tmp_path, [callback], max_epochs=2, enable_checkpointing=False)
    fit.fit(model, loader(4))
    assert fit.global_step == 8
    assert _runs(tmp_path) == {"lightning_logs/version_0/feature_maps": [0, 4, 8]}  # global_step, as the scalars count
    assert _event_dirs(tmp_path) == {"lightning_logs/version_0", "lightning_logs/version_0/feature_maps"}
    assert callback.run_dir == str(tmp_path / "lightning_logs" / "version_0" / "feature_maps")
    run = reader.load(str(tmp_path))["lightning_logs/version_0/feature_maps"]
    assert list(run.layers) == ["conv", "pool"]
    assert run.layers["conv"].tiles(-1, probe=2).std() > 0
    assert model.probe_passes == 4  # the first pass checks the probes, then one per logged step


def test_without_a_tensorboard_logger_the_run_goes_into_default_root_dir(tmp_path):
    fit = trainer(tmp_path, [FeatureMapsCallback(probes=PROBES, run_name="maps")], max_epochs=1, logger=False, enable_checkpointing=False)
    fit.fit(TinyNet(), loader(2))
    assert _runs(tmp_path) == {"maps": [0, 2]}


def test_every_n_steps_counts_optimizer_steps_under_gradient_accumulation(tmp_path):
    callback = FeatureMapsCallback(tmp_path / "maps", probes=PROBES, every_n_steps=2)
    fit = trainer(tmp_path, [callback], max_epochs=1, accumulate_grad_batches=2, enable_checkpointing=False)
    fit.fit(TinyNet(), loader(12))  # 12 batches: 6 optimizer steps
    assert fit.global_step == 6
    assert _runs(tmp_path / "maps") == {"feature_maps": [0, 2, 4, 6]}


def test_resume_from_a_checkpoint_continues_the_steps_in_the_same_run(tmp_path):
    first = trainer(tmp_path, [FeatureMapsCallback(probes=PROBES)], max_epochs=1)
    first.fit(TinyNet(), loader(4))
    checkpoint = next((tmp_path / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt"))
    again = trainer(tmp_path, [FeatureMapsCallback(probes=PROBES)], max_epochs=3, logger=TensorBoardLogger(tmp_path, version=0))
    again.fit(TinyNet(), loader(4), ckpt_path=str(checkpoint))
    assert again.global_step == 12
    assert _runs(tmp_path) == {"lightning_logs/version_0/feature_maps": [0, 4, 8, 12]}


def test_resume_into_a_new_logger_version_starts_its_run_at_the_restored_step(tmp_path):
    trainer(tmp_path, [FeatureMapsCallback(probes=PROBES)], max_epochs=1).fit(TinyNet(), loader(4))
    checkpoint = next((tmp_path / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt"))
    trainer(tmp_path, [FeatureMapsCallback(probes=PROBES)], max_epochs=2).fit(TinyNet(), loader(4), ckpt_path=str(checkpoint))
    assert _runs(tmp_path) == {"lightning_logs/version_0/feature_maps": [0, 4], "lightning_logs/version_1/feature_maps": [4, 8]}


def test_fast_dev_run_writes_nothing_but_checks_the_probes(tmp_path):
    model = TinyNet()
    trainer(tmp_path, [FeatureMapsCallback(tmp_path / "maps", probes=PROBES)], fast_dev_run=True).fit(model, loader(4))
    assert not (tmp_path / "maps").exists()
    assert model.probe_passes == 1
    bad = FeatureMapsCallback(tmp_path / "maps", probes=torch.rand(3, 2, 28, 28))
    with pytest.raises(ValueError, match="could not run on the probes"):
        trainer(tmp_path, [bad], fast_dev_run=True).fit(TinyNet(), loader(4))
    assert not (tmp_path / "maps").exists()


def test_bad_arguments_raise_at_construction_naming_them(tmp_path):
    with pytest.raises(ValueError, match="max_filters"):
        FeatureMapsCallback(max_filters=0)
    with pytest.raises(ValueError, match="every_n_steps"):
        FeatureMapsCallback(every_n_steps=0)
    with pytest.raises(TypeError, match="'every_n_step'.*every_n_steps"):
        FeatureMapsCallback(every_n_step=10)
    with pytest.raises(ValueError, match="layers= names 'nope'"):
        trainer(tmp_path, [FeatureMapsCallback(layers=["nope"])], enable_checkpointing=False).fit(TinyNet(), loader(2))


def test_the_lightning_package_is_used_where_the_process_already_imported_it(monkeypatch):
    import pytorch_lightning

    assert lightning.pl is pytorch_lightning and lightning._lightning() is pytorch_lightning
    stub = types.ModuleType("lightning.pytorch")
    monkeypatch.setitem(sys.modules, "lightning.pytorch", stub)
    assert lightning._lightning() is stub  # its Trainer accepts only its own Callback class


DDP = """
import json, sys
import torch
from helpers.lightning import TinyNet, loader, trainer
from tb_featuremaps.lightning import FeatureMapsCallback

root, out = sys.argv[1:3]


class Reporting(TinyNet):
    def on_fit_end(self):
        with open(f"{out}/rank{self.global_rank}.json", "w") as file:
            json.dump({"probe_passes": self.probe_passes, "global_step": self.trainer.global_step}, file)


callback = FeatureMapsCallback(probes=torch.rand(3, 1, 28, 28), every_n_steps=1)
fit = trainer(root, [callback], strategy="ddp", devices=2, max_epochs=1, enable_checkpointing=False)
fit.fit(Reporting(), loader(8))
"""


def test_ddp_on_two_processes_logs_one_run_from_global_zero(tmp_path):
    script, out = tmp_path / "train.py", tmp_path / "out"
    script.write_text(DDP)  # Lightning's "ddp" starts the other rank by running this script again
    out.mkdir()
    launcher = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "root"), str(out)],
        env=script_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: both ranks can be killed at once
    )
    try:
        output = launcher.communicate(timeout=TIMEOUT)[0]
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.communicate()
        pytest.fail(f"the DDP training hung for {TIMEOUT} s")
    assert launcher.returncode == 0, output[-4000:]
    reports = [json.loads((out / f"rank{rank}.json").read_text()) for rank in range(2)]
    steps = reports[0]["global_step"]
    assert steps == 4  # 32 pictures in batches of 4, half on each rank
    assert _runs(tmp_path / "root") == {"lightning_logs/version_0/feature_maps": list(range(steps + 1))}
    assert [report["probe_passes"] for report in reports] == [steps + 2, 0]
