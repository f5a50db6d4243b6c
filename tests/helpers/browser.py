"""Debian's Chromium driven by Playwright, and waiting for the Feature Maps panel's grid.

The benchmarks (``benchmarks/browser.py``) launch Chromium through :func:`launch_chromium`
too; nothing here needs pytest or Playwright until it is called.
"""

from __future__ import annotations

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium: the browser tests and benchmarks use it, never Playwright's own browsers."""
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000
"""Playwright's timeout in the browser tests."""


def have_chromium() -> bool:
    return Path(CHROMIUM).exists()


def needs_chromium():
    """The mark that skips a browser test module without Debian's chromium (``pytestmark = needs_chromium()``)."""
    import pytest

    return pytest.mark.skipif(not have_chromium(), reason=f"needs Debian's chromium at {CHROMIUM}")


def launch_chromium(playwright):
    """Chromium, headless, from a ``sync_playwright()`` context."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_panel(page, server: str, hash_: str = "run=feature_maps"):
    """Opens the plugin's iframe page directly and waits for the first grid."""
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#{hash_}")
    wait_grid(page)


def wait_grid(page, step=None, pane: int = 0):
    """Waits until pane `pane`'s canvas shows a grid (of `step`, if given)."""
    page.wait_for_function(
        "([pane, step]) => { const c = document.querySelectorAll('canvas.fm-grid')[pane];"
        " return c && !c.hidden && c.dataset.step && (step === null || c.dataset.step === String(step)); }",
        arg=[pane, step],
    )
