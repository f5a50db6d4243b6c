"""Bytes uploaded per step to a ``gs://`` log dir, against a local GCS emulator.

python -m benchmarks.gcs [--steps 100] [--out results.json]

Writes ``--steps`` steps of the seed-size log (``logdirs.write_log`` on the seed
model's four layers and ten probes: grids, stats, Images copies, scalars, as the
callback does) through ``FeatureMapsWriter("gs://bucket/seed")``, one flush per
step, and counts every upload (each whole-file upload of a remote event file:
``filesystem.write_whole``). Reports the bytes uploaded per step against the
bytes of the final log in the bucket. The emulator is the tests' own
(``tests/helpers/gcs.py``: ``pip install -e ".[test]"``); the bytes do not depend on
it, the seconds do (a local emulator has no network in between).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from tests.helpers import gcs

from .logdirs import RUN, seed_layers, write_log

BUCKET = "benchmark"
LOGDIR = f"gs://{BUCKET}/seed"


def upload_bytes(steps: int) -> dict:
    """Writes ``steps`` steps to the emulator's bucket; returns the bytes uploaded, the final log's, and the files."""
    if not gcs.available():
        raise SystemExit(gcs.MISSING)
    layers = seed_layers()  # before the emulator: the seed model trains a little first
    with gcs.emulator(BUCKET):
        import gcsfs

        with gcs.counted_uploads() as uploads:
            started = time.perf_counter()
            write_log(LOGDIR, layers, steps)
            seconds = time.perf_counter() - started
        stored = gcsfs.GCSFileSystem().du(f"{LOGDIR}/{RUN}", total=False)
    uploaded, final = sum(size for _, size in uploads), sum(stored.values())
    return {
        "steps": steps,
        "uploads": len(uploads),
        "event_files": len(stored),
        "uploaded_bytes": uploaded,
        "final_log_bytes": final,
        "uploaded_per_step": uploaded / steps,
        "log_per_step": final / steps,
        "ratio": uploaded / final,
        "seconds": seconds,
    }


def report(result: dict) -> str:
    return (
        f"{result['steps']} steps, {result['event_files']} event files, {result['uploads']} uploads: "
        f"{result['uploaded_bytes'] / 1e6:.1f} MB uploaded for a {result['final_log_bytes'] / 1e6:.1f} MB log; "
        f"per step {result['uploaded_per_step'] / 1e3:.0f} KB uploaded against {result['log_per_step'] / 1e3:.0f} KB logged "
        f"({result['ratio']:.2f}x); {result['seconds']:.1f} s to the local emulator"
    )


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="steps written (default 100)")
    parser.add_argument("--out", type=Path, help="also write the results there as JSON")
    arguments = parser.parse_args(argv)
    if arguments.steps < 1:
        parser.error(f"--steps must be at least 1, got {arguments.steps}")
    result = upload_bytes(arguments.steps)
    print(report(result))
    if arguments.out:
        arguments.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
