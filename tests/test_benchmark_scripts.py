"""The stand-alone benchmark scripts: gs:// uploads against the emulator for real, and the TensorFlow-free venv's checks."""

from __future__ import annotations

import importlib.util
import json

import pytest
from helpers import gcs

from benchmarks import gcs as gcs_benchmark
from benchmarks import tensorflow_free_venv


@pytest.mark.skipif(not gcs.available(), reason=gcs.MISSING)
def test_gcs_uploads_per_step_are_counted_against_the_final_log(tmp_path, capsys):
    out = tmp_path / "gcs.json"
    result = gcs_benchmark.main(["--steps", "5", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    # The seed-size log (about 340 KB a step) fills a 1 MiB remote event file in 4 steps: uploads of 1, 2, 3, 4, then 1 step.
    assert (result["uploads"], result["event_files"]) == (5, 2)
    assert 2.0 < result["ratio"] < 2.4 and result["uploaded_bytes"] == pytest.approx(result["ratio"] * result["final_log_bytes"])
    assert "5 steps, 2 event files, 5 uploads" in capsys.readouterr().out


def test_gcs_refuses_fewer_than_one_step(capsys):
    with pytest.raises(SystemExit):
        gcs_benchmark.main(["--steps", "0"])
    assert "--steps must be at least 1, got 0" in capsys.readouterr().err


def test_the_venv_runs_the_readme_s_pytorch_snippet():
    snippet = tensorflow_free_venv.snippet_with(tensorflow_free_venv.SNIPPET)
    assert "logger.log(step)" in snippet and "import tensorflow" not in snippet and "import keras" not in snippet


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="measures this environment's TensorFlow (the test extra has it)")
def test_what_tensorflow_adds_counts_its_requirements_beyond_the_venv_s():
    everything = tensorflow_free_venv.tensorflow_addition(set())
    assert everything["distributions"]["tensorflow"] > 100e6 and "keras" in everything["distributions"]
    assert everything["bytes"] == sum(everything["distributions"].values())
    without_numpy = tensorflow_free_venv.tensorflow_addition({"numpy"})
    assert "numpy" in everything["distributions"] and "numpy" not in without_numpy["distributions"]


def test_an_existing_venv_folder_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        tensorflow_free_venv.main(["--venv", str(tmp_path)])
    assert f"--venv {tmp_path} already exists; pass a new folder" in capsys.readouterr().err
