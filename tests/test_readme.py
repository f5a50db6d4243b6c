"""Every ``python`` snippet of the README runs as written, offline, and logs feature maps.

Each runs in a process of its own in an empty folder (its ``logs/`` is then read
back). A snippet whose first line is ``# after the first snippet ...`` continues the
README's first one (its model and data), so it runs after it, as a reader pasting
both would. Only the lengths are cut to keep the test short: ``epochs=10`` (and
Lightning's ``max_epochs=10``) runs 1 epoch and the loops' 401 steps run 51 (still
two logged steps each).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata

import pytest
from helpers.readme import README, snippets

from tb_featuremaps import reader

CONTINUES = "# after the first snippet"
SHORTER = ((r"\b(max_)?epochs=10\b", r"\1epochs=1"), (r"\b401\b", "51"))
"""What is cut in each snippet before it runs: training lengths only."""


def _runnable(code: str) -> str:
    """``code`` as it runs: after the first snippet where it says it continues it, with the lengths cut."""
    if code.startswith(CONTINUES):
        code = snippets()[0] + "\n" + code
    for pattern, replacement in SHORTER:
        code = re.sub(pattern, replacement, code)
    return code


def test_the_readme_has_its_snippets():
    found = snippets()
    assert len(found) >= 7
    assert not found[0].startswith(CONTINUES), "the first snippet must run alone"


@pytest.mark.parametrize("index", range(len(snippets())))
def test_a_readme_snippet_runs_offline(index, tmp_path):
    code = _runnable(snippets()[index])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(README.parent)}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[name] = "http://127.0.0.1:9"  # offline: any download fails at once
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"snippet {index + 1} failed:\n{code}\n--- stderr ---\n{done.stderr[-3000:]}"
    runs = reader.load(str(tmp_path / "logs"))
    assert runs and all(len(next(iter(run.layers.values())).steps) >= 2 for run in runs.values()), list(runs)


def test_the_install_section_names_every_extra():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Install\n") : text.index("\n## ", text.index("## Install\n") + 1)]
    listed = set(re.findall(r"^\| `\[(\w+)\]` \|", section, flags=re.M))
    assert listed == set(metadata.metadata("tb-featuremaps").get_all("Provides-Extra")), listed
    assert 'pip install -e ".[train]" && python -m training.train --logdir runs --epochs 20' in text  # the quick start, unchanged
