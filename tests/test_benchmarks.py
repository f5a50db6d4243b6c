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
