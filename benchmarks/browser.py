"""The panel in headless Chromium: time to the first painted grid, steps per second while scrubbing, and the
time from choosing a layer not seen before to its grid painted (the browser's clock)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from tests.helpers.browser import CHROMIUM, have_chromium, launch_chromium

from . import logdirs
from .serving import start, wait_ready

GRID = "canvas.fm-grid[data-step]"

# Moves the slider one step at a time and waits until the grid shows that step; returns seconds.
_SCRUB = """async ({moves, timeoutMs}) => {
  const slider = document.querySelector("input.fm-slider");
  const grid = () => document.querySelector("canvas.fm-grid");
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const count = Number(slider.max) + 1;
  const started = performance.now();
  for (let move = 1; move <= moves; move++) {
    const index = move % count;
    slider.value = String(index);
    slider.dispatchEvent(new Event("input", { bubbles: true }));
    while (grid().dataset.step !== String(index)) {
      if (performance.now() - started > timeoutMs) throw new Error(`step ${index} not shown`);
      await frame();
    }
  }
  return (performance.now() - started) / 1000;
}"""


# Chooses another layer (one with `filters` filters, not shown before) and waits for its grid; returns milliseconds.
_NEW_LAYER = """async ({layer, filters, timeoutMs}) => {
  const select = document.querySelector("select[aria-label=Layer]");
  const grid = () => document.querySelector("canvas.fm-grid");
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const started = performance.now();
  select.value = layer;
  select.dispatchEvent(new Event("change", { bubbles: true }));
  while (grid()?.dataset.filters !== String(filters)) {
    if (performance.now() - started > timeoutMs) throw new Error(`layer ${layer} not shown`);
    await frame();
  }
  return performance.now() - started;
}"""


def measure_panel(workdir: str, steps: int, moves: int, loaders: Sequence[bool] = (True, False)) -> dict:
    """Loads the seed-like log (steps 0..steps-1) into TensorBoard and drives the panel, for each loader."""
    if not have_chromium():
        return {"measured": False, "reason": f"no Chromium at {CHROMIUM}"}
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"measured": False, "reason": "playwright is not installed"}
    logdir = logdirs.write_log(os.path.join(workdir, "seed"), logdirs.seed_layers(), steps)
    results = {"measured": True, "steps": steps, "moves": moves, "loaders": []}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for load_fast in loaders:
                results["loaders"].append(_drive(browser, logdir, steps, moves, load_fast))
        finally:
            browser.close()
    return results


def _drive(browser, logdir: str, steps: int, moves: int, load_fast: bool) -> dict:
    from playwright.sync_api import Error as PlaywrightError

    server = start(logdir, load_fast)
    try:
        path = f"/data/plugin/feature_maps/steps?run={logdirs.RUN}&layer=conv1"
        wait_ready(server, lambda s: len(s.json(path)["steps"]) >= steps, 300, poll=0.5)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        started = time.perf_counter()
        page.goto(f"http://127.0.0.1:{server.port}/data/plugin_entry.html?name=feature_maps")
        try:
            page.wait_for_selector(GRID, state="attached", timeout=60_000)
        except PlaywrightError as error:
            raise RuntimeError(f"no grid painted; the panel shows: {page.inner_text('body')[:300]!r}") from error
        first = time.perf_counter() - started
        seconds = page.evaluate(_SCRUB, {"moves": moves, "timeoutMs": 60_000})
        new_layer_ms = page.evaluate(_NEW_LAYER, {"layer": "conv2", "filters": 64, "timeoutMs": 60_000})
        page.close()
    finally:
        server.close()
    return {"load_fast": load_fast, "seconds_to_first_grid": first, "steps_per_second": moves / seconds, "new_layer_ms": new_layer_ms}
