"""Log bytes per step on the seed model: the event file's growth per ``log(step)``, split by what the bytes are."""

from __future__ import annotations

import glob
import os
import statistics
import time
import warnings
from typing import Any

from tensorboard.backend.event_processing import event_file_loader

from tb_featuremaps import FeatureMapsLogger
from tb_featuremaps.format import metadata

from .common import directory_bytes
from .training import seed_model

VARIANTS = {"default": {}, "write_images=True": {"write_images": True}, "write_images=False": {"write_images": False}}
"""Logger arguments measured: today's default and the two settings of the Images copies it sits between."""


def _kind(tag: str, plugin: str) -> str:
    if tag == metadata.PROBES_TAG:
        return "probes"
    if plugin == "images":
        return "images_copies"
    if plugin == "scalars":
        return "scalars"
    kind = tag.split("/", 1)[0]
    return {metadata.KIND_ACTIVATIONS: "feature_map_pngs", metadata.KIND_WEIGHTS: "kernel_pngs", metadata.KIND_STATS: "stats"}.get(kind, kind)


def breakdown(run_dir: str) -> dict[str, int]:
    """Serialized value bytes by kind (feature-map PNGs, kernel PNGs, stats, Images copies, scalars, probes)."""
    plugins: dict[str, str] = {}
    totals: dict[str, int] = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "events.out.tfevents.*"))):
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name:
                    plugins[value.tag] = value.metadata.plugin_data.plugin_name
                kind = _kind(value.tag, plugins.get(value.tag, ""))
                totals[kind] = totals.get(kind, 0) + value.ByteSize()
    return totals


def measure(log_dir: str, steps: int = 3, **arguments: Any) -> dict:
    """Bytes per step (median of ``steps`` after the first, which also carries the probes), the milliseconds of a whole
    log event (queued and written) and the split."""
    model, probes, labels = seed_model()
    run_name = "run"
    run_dir = os.path.join(log_dir, run_name)
    logger = FeatureMapsLogger(model, log_dir, probes=probes, labels=labels, run_name=run_name, **arguments)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger.log(0)
        sizes, seconds = [], []
        for step in range(1, steps + 1):
            before, started = directory_bytes(run_dir), time.perf_counter()
            logger.log(step)
            logger.writer.flush()  # the step is written on the writer's thread: count its bytes once they are in the file
            seconds.append(time.perf_counter() - started)
            sizes.append(directory_bytes(run_dir) - before)
        logger.close()
    totals = breakdown(run_dir)
    return {
        "bytes_per_step": statistics.median(sizes),
        "ms_per_step": 1000 * statistics.median(seconds),
        "per_step_by_kind": {kind: total // (steps + 1) for kind, total in sorted(totals.items()) if kind != "probes"},
    }


def step_bytes(log_dir: str, steps: int = 3) -> dict:
    """:func:`measure` for each of :data:`VARIANTS`."""
    return {name: measure(os.path.join(log_dir, name.replace("=", "_")), steps, **arguments) for name, arguments in VARIANTS.items()}


if __name__ == "__main__":
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        print(json.dumps(step_bytes(workdir), indent=2))
