"""``format/`` depends on nothing else of the package: each of its modules imports in a fresh process without the render,
writer, plugin or producer modules (the format is what they share, so none of them may be needed to read a log)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest
from helpers.processes import script_env

import tb_featuremaps.format

OTHERS = ("render", "writer", "plugin", "keras", "torch", "export", "lightning", "distributed", "warning", "reader")
"""The package's modules outside ``format/`` (``tb_featuremaps.reader`` is the reader's public alias)."""

MODULES = sorted(info.name for info in pkgutil.walk_packages(tb_featuremaps.format.__path__, "tb_featuremaps.format."))

SCRIPT = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(name for name in sys.modules if name.startswith("tb_featuremaps."))))
"""


def test_every_format_module_is_checked():
    assert {"tb_featuremaps.format.reader", "tb_featuremaps.format.metadata", "tb_featuremaps.format.kinds.strongest"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_a_format_module_imports_nothing_else_of_the_package(module):
    result = subprocess.run([sys.executable, "-c", SCRIPT, module], capture_output=True, text=True, env=script_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout.splitlines()[-1])
    outside = sorted(name for name in imported if name.split(".")[1] in OTHERS)
    assert not outside, f"importing {module} imported {outside}"
