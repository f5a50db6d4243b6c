"""The Convergence view's chart in headless Chromium: every layer's CKA to its latest step, 50 layers x 400 steps.

Budget (issue 18): the chart paints in at most 1 s (the browser's clock). Measured three ways, each from a
fresh page: the first open (TensorBoard reads every layer's responses and the plugin computes CKA), a second
open (the plugin's answer cached; the page fetches and draws), and the drawing alone (chart built to the next
frame). The log is written through ``FeatureMapsWriter`` with a pool (``tests.helpers.logs.write_responses_run``).

python -m benchmarks.convergence_chart [--layers 50] [--steps 400]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from tests.helpers.browser import CHROMIUM, have_chromium, launch_chromium
from tests.helpers.logs import write_responses_run

from .serving import start, wait_ready

POOL = 100
"""Pool inputs of the log: the chart's cost is layers x steps; the pool's size only sets the plugin's CKA cost."""
FILTERS = 8

_OPEN = """async ({timeoutMs}) => {
  const view = () => document.querySelector(".fm-convergence");
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const started = performance.now();
  [...document.querySelectorAll("button")].find((button) => button.textContent === "Convergence").click();
  while (!view()?.dataset.paintedMs) {
    if (performance.now() - started > timeoutMs) throw new Error("the chart was not painted");
    await frame();
  }
  return {clickToPaintedMs: Number(view().dataset.paintedMs) - started, paintMs: Number(view().dataset.paintMs),
          lines: document.querySelectorAll("path.fm-cka-line").length};
}"""


def write_log(directory: str, layers: int, steps: int) -> str:
    """A run of ``layers`` layers whose responses settle one after another (bottom up), at ``steps`` steps."""
    rng = np.random.default_rng(0)
    labels = [f"digit{index % 10}" for index in range(POOL)]
    responses = {}
    for layer in range(layers):
        final = rng.random((POOL, FILTERS)).astype(np.float32)
        settle = int(steps * (layer + 1) / (layers + 1))
        noise = rng.normal(size=(steps, POOL, FILTERS)).astype(np.float32) * (np.arange(steps) < settle)[:, None, None]
        responses[f"layer{layer:02d}"] = final + noise
    write_responses_run(os.path.join(directory, "feature_maps"), list(range(steps)), responses, labels)
    return directory


def measure(workdir: str, layers: int = 50, steps: int = 400, load_fast: bool = False) -> dict:
    """Writes the log, serves it and opens the Convergence view three times; milliseconds on the browser's clock."""
    if not have_chromium():
        return {"measured": False, "reason": f"no Chromium at {CHROMIUM}"}
    from playwright.sync_api import sync_playwright

    began = time.perf_counter()
    logdir = write_log(workdir, layers, steps)
    written = time.perf_counter() - began
    server = start(logdir, load_fast)
    opens = []
    try:
        path = "/data/plugin/feature_maps/runs"
        wait_ready(server, lambda s: sum(layer["step_count"] == steps for layer in s.json(path)["runs"][0]["layers"]) == layers, 600, poll=1)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                for _ in range(3):
                    page = browser.new_page(viewport={"width": 1280, "height": 900})
                    page.goto(f"http://127.0.0.1:{server.port}/data/plugin_entry.html?name=feature_maps")
                    page.wait_for_selector("canvas.fm-grid[data-step]", state="attached", timeout=120_000)
                    opens.append(page.evaluate(_OPEN, {"timeoutMs": 120_000}))
                    page.close()
            finally:
                browser.close()
    finally:
        server.close()
    return {
        "measured": True,
        "layers": layers,
        "steps": steps,
        "pool": POOL,
        "filters": FILTERS,
        "load_fast": load_fast,
        "seconds_to_write_log": round(written, 1),
        "first_open": opens[0],
        "later_opens": opens[1:],
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=50)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--load-fast", action="store_true", help="the Rust data server (default: the Python loader)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        print(json.dumps(measure(workdir, args.layers, args.steps, args.load_fast), indent=2))


if __name__ == "__main__":
    main()
