"""The benchmark command runs for real (its smallest piece, in quick mode) and writes the promised JSON."""

from __future__ import annotations

import json

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
