"""The README's ``python`` snippets, as the README test and the TensorFlow-free venv benchmark run them.

Needs only the standard library (``benchmarks/tensorflow_free_venv.py`` imports it).
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def snippets() -> list[str]:
    """The README's ``python`` blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def snippet_with(line: str) -> str:
    """The first ``python`` block of the README that holds ``line`` (e.g. an import)."""
    found = [code for code in snippets() if line in code.splitlines()]
    if not found:
        raise LookupError(f"no python snippet of {README.name} has the line {line!r}")
    return found[0]
