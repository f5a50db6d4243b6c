"""Timing, percentiles, process memory and machine description shared by the benchmarks."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from importlib import metadata as importlib_metadata
from typing import Any


def elapsed_ms(function: Callable[[], Any]) -> float:
    """Wall-clock milliseconds of one call."""
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000.0


def percentile(values: Iterable[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def summary(values: Iterable[float]) -> dict[str, float]:
    """Median, p95, min, max and count of a list of timings."""
    values = list(values)
    return {
        "p50": statistics.median(values) if values else float("nan"),
        "p95": percentile(values, 0.95),
        "min": min(values, default=float("nan")),
        "max": max(values, default=float("nan")),
        "n": len(values),
    }


def rss_kib(pid: int, with_children: bool = True) -> int:
    """Resident memory (VmRSS, KiB) of ``pid`` and, optionally, all its descendants."""
    total = 0
    pids = [pid, *(_descendants(pid) if with_children else [])]
    for each in pids:
        try:
            with open(f"/proc/{each}/status", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        children = parents.get(queue.pop(), [])
        found += children
        queue += children
    return found


def directory_bytes(path: str) -> int:
    """Total size of the files under ``path``."""
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def machine() -> dict[str, Any]:
    """Cores, CPU model, load and package versions of this machine, with today's date."""
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except OSError:
        pass
    versions = {}
    for package in ("tensorflow", "keras", "tensorboard", "tensorboard-data-server", "numpy", "pillow", "matplotlib"):
        try:
            versions[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "date": datetime.date.today().isoformat(),
        "cores": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "load_average": list(os.getloadavg()),
        "python": platform.python_version(),
        "versions": versions,
    }
