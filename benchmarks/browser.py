"""The panel in headless Chromium: time to the first painted grid, steps per second while scrubbing, and the
time from choosing a layer not seen before to its grid painted (the browser's clock): once after scrubbing, then
in fresh panels for a layer the panel read ahead and for one it did not."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from tests.helpers.browser import CHROMIUM, have_chromium, launch_chromium

from . import logdirs
from .common import summary
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


# Chooses another layer (not shown before) and waits until the grid shows it; returns milliseconds.
_NEW_LAYER = """async ({layer, timeoutMs}) => {
  const select = document.querySelector("select[aria-label=Layer]");
  const shows = () => (document.querySelector("canvas.fm-grid")?.getAttribute("aria-label") || "").includes(` of ${layer} at `);
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const started = performance.now();
  select.value = layer;
  select.dispatchEvent(new Event("change", { bubbles: true }));
  while (!shows()) {
    if (performance.now() - started > timeoutMs) throw new Error(`layer ${layer} not shown`);
    await frame();
  }
  return performance.now() - started;
}"""

OPENS = 20
"""Fresh panels in which :func:`_opens` times opening two layers not seen before."""

LOOK_MS = 1000
"""How long the simulated user looks at a layer before opening the next (the panel reads ahead meanwhile)."""


# Scrolls the All layers view to its bottom, 60 px per frame; returns the frame intervals (ms) and what was loaded.
_SCROLL = """async ({timeoutMs}) => {
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const started = performance.now();
  const intervals = [];
  let last = await frame();
  while (window.scrollY + window.innerHeight < document.documentElement.scrollHeight - 1) {
    if (performance.now() - started > timeoutMs) throw new Error("the page did not scroll to its end");
    window.scrollBy(0, 60);
    const now = await frame();
    intervals.push(now - last);
    last = now;
  }
  return {intervals, height: document.documentElement.scrollHeight};
}"""

RESNET50_STAGES = ((112, 64, 1), (56, 256, 10), (28, 512, 13), (14, 1024, 19), (7, 2048, 10))
"""(side, channels, layers) of the convolutions of ResNet50 at 224x224 the callback logs by default (53)."""


def measure_layers_scroll(workdir: str, loaders: Sequence[bool] = (True, False)) -> dict:
    """The All layers view of a ResNet50-shaped log (53 layers, 2 probes, 2 steps) scrolled top to bottom in Chromium."""
    if not have_chromium():
        return {"measured": False, "reason": f"no Chromium at {CHROMIUM}"}
    from playwright.sync_api import sync_playwright

    layers = []
    for side, channels, count in RESNET50_STAGES:
        for noise in logdirs.noise_layers(count, 2, side, min(channels, 128), seed=side):
            layers.append(logdirs.LogLayer(f"conv{len(layers) + 1}_{side}", "Conv2D", noise.maps))
    logdir = logdirs.write_log(os.path.join(workdir, "resnet_layers"), layers, 2)
    results = {"measured": True, "layers": len(layers), "loaders": []}
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            for load_fast in loaders:
                server = start(logdir, load_fast)
                try:
                    wait_ready(server, lambda s: len(s.json("/data/plugin/feature_maps/runs")["runs"][0]["layers"]) == len(layers), 300, poll=0.5)
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    asked: list = []
                    page.on("request", lambda request, asked=asked: asked.append(request.url) if "/grid" in request.url else None)
                    page.goto(f"http://127.0.0.1:{server.port}/data/plugin_entry.html?name=feature_maps#view=layers")
                    page.wait_for_selector(GRID, state="attached", timeout=60_000)
                    page.wait_for_timeout(1000)
                    before = len(asked)
                    scrolled = page.evaluate(_SCROLL, {"timeoutMs": 120_000})
                    page.close()
                finally:
                    server.close()
                intervals = sorted(scrolled["intervals"])
                results["loaders"].append(
                    {
                        "load_fast": load_fast,
                        "frames": len(intervals),
                        "page_height": scrolled["height"],
                        "frame_ms": {"p50": intervals[len(intervals) // 2], "p95": intervals[int(len(intervals) * 0.95)], "max": intervals[-1]},
                        "grid_requests_before_scrolling": before,
                    }
                )
        finally:
            browser.close()
    return results


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
        new_layer_ms = page.evaluate(_NEW_LAYER, {"layer": "conv2", "timeoutMs": 60_000})
        page.close()
        opens = _opens(browser, server)
    finally:
        server.close()
    return {"load_fast": load_fast, "seconds_to_first_grid": first, "steps_per_second": moves / seconds, "new_layer_ms": new_layer_ms, **opens}


def _opens(browser, server) -> dict:
    """:data:`OPENS` times, each in a new browser context (an empty HTTP cache): the panel opened on conv1, then conv2
    chosen (not beside conv1: nothing read ahead for it) and then pool2 (beside conv2: read ahead while the user looked
    at conv2, :data:`LOOK_MS`). Milliseconds from the choice to its grid painted (:func:`~.common.summary` of each)."""
    far, beside = [], []
    for _ in range(OPENS):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{server.port}/data/plugin_entry.html?name=feature_maps")
            page.wait_for_selector(GRID, state="attached", timeout=60_000)
            page.wait_for_timeout(LOOK_MS)
            far.append(page.evaluate(_NEW_LAYER, {"layer": "conv2", "timeoutMs": 60_000}))
            page.wait_for_timeout(LOOK_MS)
            beside.append(page.evaluate(_NEW_LAYER, {"layer": "pool2", "timeoutMs": 60_000}))
        finally:
            context.close()
    return {"far_layer_ms": summary(far), "next_layer_ms": summary(beside)}
