"""One log event, stage by stage: the real ``FeatureMapsLogger`` with a timer hook on each stage."""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from collections.abc import Sequence

import keras

from tb_featuremaps import FeatureMapsLogger
from tb_featuremaps.writer import STAGES


def time_stages(model: keras.Model, probes: list, labels: Sequence[str], run_dir: str, events: int) -> dict[str, dict]:
    """Median milliseconds per stage over ``events`` log events (after one warm-up event), with the default settings.

    The writer runs in the foreground here, so that each event's stages are timed together.
    """
    clock: dict[str, float] = defaultdict(float)

    def timer(stage: str, seconds: float) -> None:
        clock[stage] += seconds * 1000.0

    logger = FeatureMapsLogger(
        model, os.path.dirname(run_dir), probes, list(labels), run_name=os.path.basename(run_dir), timer=timer, background=False
    )
    runs = []
    try:
        for step in range(events + 1):
            clock.clear()
            if not logger.log(step):
                raise RuntimeError(f"the benchmark's log event {step} failed (see the warning)")
            runs.append({stage: clock[stage] for stage in STAGES})
    finally:
        logger.close()
    runs = runs[1:]  # the first event traces the model and opens the files
    medians = {stage: statistics.median(run[stage] for run in runs) for stage in STAGES}
    medians["total"] = statistics.median(sum(run.values()) for run in runs)
    return {"ms": medians, "events": events, "layers": len(logger.layer_paths)}
