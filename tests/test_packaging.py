"""What ``pip install`` puts into site-packages, and the demo's stderr filter."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_ships_only_tb_featuremaps(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("tb_featuremaps-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"tb_featuremaps"}  # no top-level `training` shadowing a user's own module
    assert "tb_featuremaps/plugin/static/index.js" in names and "tb_featuremaps/data/mnist_probes.npz" in names


FILTERED = r"""
import os, sys
sys.path.insert(0, sys.argv[1])
from training.quiet import quiet_tensorflow
with quiet_tensorflow():
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
    os.write(2, b"I0000 00:00:1.5   26079 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results\n")
    os.write(2, b"E0000 00:00:1.5   26079 some_kernel.cc:12] a real error\n")
    print("a Python warning", file=sys.stderr)
print("after", file=sys.stderr)
"""


def test_the_demo_drops_tensorflow_chatter_and_keeps_real_errors():
    done = subprocess.run([sys.executable, "-c", FILTERED, str(ROOT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["E0000 00:00:1.5   26079 some_kernel.cc:12] a real error", "a Python warning", "after"]
