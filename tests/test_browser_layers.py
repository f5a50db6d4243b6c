"""The "All layers" view in a real browser: 60 layers stacked, loaded lazily, each a way into its own view.

The log is written through ``FeatureMapsWriter`` (small maps, no training). Uses conftest's browser
fixtures (skipped without Debian's chromium).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from helpers.browser import needs_chromium
from helpers.logs import log_writer, write_step
from helpers.tensorboard import serving

pytestmark = needs_chromium()

LAYERS = [f"block{index:02d}" for index in range(60)]
STEPS = [0, 1, 2]
LATE = "block59"  # logged from step 1 on only: at step 0 it shows its first step, and says so
MOST_BEFORE_SCROLLING = 12  # grid requests for the layers near the first screen


def maps(step: int, layer: int) -> np.ndarray:
    return np.random.default_rng(100 * step + layer).normal(size=(2, 6, 6, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("all_layers")
    with log_writer(logdir / "deep") as writer:
        for step in STEPS:
            write_step(writer, step, {name: maps(step, index) for index, name in enumerate(LAYERS) if step > 0 or name != LATE})
    with serving(logdir, ["--load_fast=false"], runs=1) as base:
        yield base


def grid_layers(urls: list[str]) -> set[str]:
    """The layers whose grids were asked for (``grid`` and ``grids`` requests)."""
    asked = set()
    for url in urls:
        parsed = urlparse(url)
        if parsed.path.endswith(("/grid", "/grids")):
            asked.update(parse_qs(parsed.query).get("layer", []))
    return asked


def test_all_layers_load_lazily_and_open_a_layer(page, server):
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run=deep&view=layers&step=0")
    rows = page.locator(".fm-layer")
    rows.first.wait_for()
    assert rows.count() == len(LAYERS)
    assert [name for name in rows.evaluate_all("rows => rows.map(row => row.dataset.layer)")] == LAYERS
    page.wait_for_function("document.querySelector('.fm-layer canvas')?.dataset.step === '0'")
    page.wait_for_timeout(500)  # anything else the first screen asks for
    before = grid_layers(asked)
    assert LAYERS[0] in before
    assert len(before) <= MOST_BEFORE_SCROLLING, sorted(before)
    print(f"grids asked for before scrolling: {len(before)} of {len(LAYERS)} layers")
    assert "Conv2D · 6×6×8 · 8 filters" in rows.first.inner_text()

    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    last = page.locator(f".fm-layer[data-layer='{LATE}'] canvas")
    page.wait_for_function(f"document.querySelector(\".fm-layer[data-layer='{LATE}'] canvas\")?.dataset.step === '1'")
    painted = last.evaluate(
        """canvas => {
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            const colours = new Set();
            for (let i = 0; i < data.length; i += 4) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
            return {width: canvas.width, colours: colours.size};
        }"""
    )
    assert painted["width"] > 0 and painted["colours"] > 20, painted
    assert "not logged" not in page.locator(f".fm-layer[data-layer='{LATE}']").inner_text()
    assert "its first logged step" in page.locator(f".fm-layer[data-layer='{LATE}'] .fm-layer-note").inner_text()
    assert LATE in grid_layers(asked)
    assert len(grid_layers(asked)) < len(LAYERS), "the layers scrolled past quickly should not all have loaded"
    print(f"grids asked for after jumping to the bottom: {len(grid_layers(asked))} of {len(LAYERS)} layers")

    page.locator(f".fm-layer[data-layer='{LATE}'] .fm-layer-open").click()
    page.locator("canvas.fm-grid[data-step]").first.wait_for()
    page.wait_for_function("location.hash.includes('layer=block59') && !location.hash.includes('view=layers')")
    assert page.locator(".fm-all-layers").is_hidden()
    assert page.get_by_label("Layer", exact=True).input_value() == LATE
    assert "block59 · Conv2D" in page.locator(".fm-summary").first.inner_text()


def test_all_layers_follow_the_step_slider(page, server):
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run=deep&view=layers&layer=block00&step=2")
    first = page.locator(".fm-layer canvas").first
    page.wait_for_function("document.querySelector('.fm-layer canvas')?.dataset.step === '2'")
    page.locator(".fm-slider").focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("document.querySelector('.fm-layer canvas')?.dataset.step === '1'")
    assert first.get_attribute("data-step") == "1"
    assert page.get_by_role("button", name="All layers").get_attribute("aria-pressed") == "true"
