"""A run with more steps than the heat strip has pixels: its columns average their steps, and it says so (real browser)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from helpers.browser import needs_chromium, open_panel
from helpers.logs import log_writer, write_step
from helpers.tensorboard import serving
from playwright.sync_api import expect

pytestmark = needs_chromium()

STEPS = 2_500


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """Run ``long``: 2,500 steps; filter 0's mean is 0 at even steps and 1 at odd ones, filter 1's is 0.5 throughout."""
    logdir = tmp_path_factory.mktemp("long_logs")
    with log_writer(logdir / "long") as writer:
        for step in range(STEPS):
            maps = np.zeros((2, 2, 2, 2), np.float32)
            maps[..., 0] = step % 2
            maps[..., 1] = 0.5
            maps[0, 0, 0, 1] = 0.0  # not constant, so that the layer's range is 0 .. 1
            write_step(writer, step, {"conv": maps})
    with serving(logdir, ["--load_fast", "false"], runs=1) as base:
        yield base


def test_heat_strip_columns_average_their_steps(page, server):
    open_panel(page, server, "run=long&layer=conv&cmap=gray")
    page.wait_for_function("document.querySelector('canvas.fm-heat')?.dataset.columns")
    heat = page.locator("canvas.fm-heat")
    steps, columns = int(heat.get_attribute("data-steps")), int(heat.get_attribute("data-columns"))
    assert steps == STEPS and 160 <= columns < STEPS
    expect(page.locator(".fm-heat-axis")).to_contain_text(f"each column averages about {round(STEPS / columns)} epochs")
    # Row of filter 0: every column holds two or three steps of 0 and 1, so no column may show a single step's 0 or 1
    # (black or white); drawn step by step, each pixel column would show whichever step was painted last.
    row = heat.evaluate(
        """(canvas) => {
            const data = canvas.getContext('2d').getImageData(0, 2, canvas.width, 1).data;
            return Array.from({ length: canvas.width }, (_, x) => data[x * 4]);
        }"""
    )
    levels = np.array(row[4:-4])  # away from the selected step's outline
    assert levels.min() >= 60 and levels.max() <= 195, f"columns show single steps: {sorted(set(levels.tolist()))[:10]} ..."
    page.mouse.move(0, 0)
    box = heat.bounding_box()
    heat.hover(position={"x": box["width"] / 2, "y": 2})
    expect(page.locator(".fm-heat-wrap .fm-tip")).to_contain_text("(averaged)")
