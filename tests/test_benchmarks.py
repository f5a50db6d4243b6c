"""The benchmark command runs for real (its smallest piece, in quick mode) and writes the promised JSON."""

from __future__ import annotations

import json

import pytest

from benchmarks import run
from tb_featuremaps.writer import STAGES


def test_quick_stages_write_json(tmp_path):
    out = tmp_path / "results.json"
    printed = []
    document = run.main(["--quick", "--only", "stages", "--out", str(out)], progress=printed.append)

    assert json.loads(out.read_text()) == json.loads(json.dumps(document))
    assert document["mode"] == "quick" and document["seconds"] > 0
    machine = document["machine"]
    assert machine["cores"] >= 1 and machine["date"] and "tensorboard" in machine["versions"]
    stages = document["sections"]["stages"]
    assert stages["layers"] == 4 and stages["events"] == run.QUICK.events
    assert set(stages["ms"]) == {*STAGES, "total"} and all(value >= 0 for value in stages["ms"].values())
    assert [target["metric"] for target in document["targets"]] == ["sum of stages (ms)"]
    assert all(isinstance(target["met"], bool) for target in document["targets"])
    assert "| seed event | sum of stages (ms) |" in printed[-2]


def test_quick_bytes_per_step_are_measured(tmp_path):
    """The ``bytes`` section counts each step's bytes once they are in the file: more than nothing, and printed so."""
    printed = []
    document = run.main(["--quick", "--only", "bytes", "--out", str(tmp_path / "results.json")], progress=printed.append)
    measured = document["sections"]["bytes"]
    assert set(measured) == {"default", "write_images=True", "write_images=False"}
    for variant, values in measured.items():
        assert values["bytes_per_step"] > 10_000, variant  # the seed model's grids alone are tens of KB a step
        assert sum(values["per_step_by_kind"].values()) > 0, variant
    assert measured["write_images=True"]["bytes_per_step"] > measured["write_images=False"]["bytes_per_step"]
    rows = [line for line in printed[-2].splitlines() if "bytes per step" in line]
    assert len(rows) == 3 and all(row.split("|")[3].strip() not in ("0", "") for row in rows), rows


def test_long_run_measures_a_given_logdir(tmp_path):
    """``benchmarks.long_run`` on a log the writer wrote: its size per step, a real TensorBoard's routes and memory,
    and ``tb-featuremaps figure`` in a fresh process, for the run it finds there."""
    from benchmarks import logdirs, long_run

    logdirs.write_log(str(tmp_path / "logs"), logdirs.noise_layers(2, probes=2, size=6, filters=4), 4)
    printed = []
    out = tmp_path / "long_run.json"
    args = [str(tmp_path / "logs"), "--loaders", "false", "--requests", "3", "--repeats", "1", "--out", str(out)]
    document = long_run.main(args, progress=printed.append)

    assert json.loads(out.read_text()) == json.loads(json.dumps(document))
    assert (document["run"], document["steps"], document["layers"], document["probes"]) == (logdirs.RUN, 4, ["conv1", "conv2"], 2)
    assert 0 < document["bytes_per_step"] * 4 == document["run_bytes"] <= document["logdir_bytes"]
    assert document["figure"]["layer"] == "conv2" and document["figure"]["step"] == 2 and document["figure"]["figure_bytes"] > 0
    (served,) = document["loaders"]
    assert served["load_fast"] is False and 0 < served["seconds_to_runs"] <= served["seconds_to_grid"]
    assert served["latency_ms"]["runs"]["n"] == served["latency_ms"]["grid"]["n"] == 3
    assert served["rss_mib"] > 0 and served["idle_rss_mib"] > 0
    assert "tb-featuremaps figure --layer conv2 --step 2" in printed[-1] and "TensorBoard feature_maps, load_fast=false" in printed[-1]


def test_long_run_names_what_it_needs(tmp_path, capsys):
    from benchmarks import long_run

    with pytest.raises(ValueError, match="no feature-maps run in .*; pass the log dir the callback wrote"):
        long_run.largest_run(str(tmp_path))
    with pytest.raises(SystemExit):
        long_run.parse_args([str(tmp_path), "--loaders", "fast"])
    assert "--loaders must be true, false or both" in capsys.readouterr().err


def test_the_224_px_strongest_stage_is_a_target_row():
    """The ``patches`` section's EfficientNetB0 stage times show as one row: the slowest layer against 200 ms."""
    stage = {
        "network": "EfficientNetB0",
        "pool_size": 500,
        "repeats": 3,
        "reduced": ["max_patch_size=12", "top_k=4"],
        "fields": {"stem_conv": [3, 3], "top_conv": [851, 851]},
        "strongest_ms": {"stem_conv": 1.5, "top_conv": 250.0},
    }
    (row,) = [row for row in run._strongest_rows({"patches": {"fields": {}, "stage_224": stage}}) if "224 px" in row.section]
    assert "top_conv, field 851 px" in row.metric and "max_patch_size=12, top_k=4" in row.section
    assert (row.value, row.target, row.met) == ("250", "<= 200", False)
