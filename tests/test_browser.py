"""The Feature Maps panel in a real browser, against a real TensorBoard serving real logs.

Needs Debian's chromium (``/usr/bin/chromium``; Playwright's own browsers are not used) and is
skipped without it. One TensorBoard and one browser serve the whole module; the live-update test
runs last because it appends a step to the log.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from helpers.browser import needs_chromium, open_panel, wait_grid
from helpers.models import fit, mnist_digits, small_cnn
from helpers.tensorboard import running
from playwright.sync_api import expect

SCREENSHOT_DIR_VARIABLE = "TB_FEATUREMAPS_SCREENSHOTS"  # set it (e.g. to docs/screenshots) to keep the screenshots
HOSTILE = "<img src=x onerror=window.pwned=1>"
EPOCHS = 6  # steps 0..6

pytestmark = needs_chromium()


class Training:
    """A small CNN trained with the real callback; :meth:`more` continues it (new steps)."""

    def __init__(self, logdir: Path):
        from tb_featuremaps import FeatureMapsCallback

        self.logdir = logdir
        self.images, self.labels = mnist_digits(200)
        self.model = small_cnn()
        self.callback = FeatureMapsCallback(str(logdir))
        self.more(EPOCHS)

    def more(self, epochs: int) -> None:
        fit(self.model, [self.callback], self.images, self.labels, epochs=epochs, batch_size=50)


@pytest.fixture(scope="module")
def training(tmp_path_factory) -> Training:
    logdir = tmp_path_factory.mktemp("browser_logs")
    training = Training(logdir)
    shutil.copytree(logdir / "feature_maps", logdir / HOSTILE)  # a second run with a hostile name
    return training


@pytest.fixture(scope="module")
def server(training):
    """A TensorBoard (Python loader) on a free port; yields its base URL."""
    with running(training.logdir, {"python": ["--load_fast=false"]}) as started:
        yield started["python"].url()


def pixels(page, selector: str = "canvas.fm-grid") -> dict:
    """How many distinct colours the canvas holds, and a fingerprint of its pixels."""
    return page.eval_on_selector(
        selector,
        """canvas => {
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            const colours = new Set();
            let print = 0;
            for (let i = 0; i < data.length; i += 4) {
                colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
                print = (print * 31 + data[i] + 7 * data[i + 1] + 13 * data[i + 2]) % 1000000007;
            }
            return {colours: colours.size, print};
        }""",
    )


def text(page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


def test_feature_maps_tab_in_tensorboard(page, server):
    page.goto(f"{server}/#feature_maps")
    page.get_by_text("Feature Maps", exact=True).first.wait_for()
    panel = page.frame_locator("iframe").first
    panel.locator("canvas.fm-grid[data-step]").wait_for()
    assert "filters" in panel.locator(".fm-summary").inner_text()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """Where screenshots go: ``$TB_FEATUREMAPS_SCREENSHOTS`` when set, else a temporary folder."""
    folder = Path(os.environ.get(SCREENSHOT_DIR_VARIABLE) or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_grid_layers_and_probes(page, server, screenshots):
    started = time.monotonic()
    open_panel(page, server, "run=feature_maps&layer=conv1")
    seconds = time.monotonic() - started
    canvas = page.locator("canvas.fm-grid").first
    assert canvas.get_attribute("data-filters") == "8"
    assert "8 filters" in text(page, ".fm-summary")
    assert pixels(page)["colours"] > 20, "the grid is blank"
    layers = page.get_by_label("Layer", exact=True).locator("option").all_inner_texts()
    assert [name.split(" ")[0] for name in layers] == ["conv1", "pool1", "conv2", "pool2"]
    assert "Conv2D · 28×28×8" in layers[0] and "MaxPooling2D" in layers[1]
    probes = page.locator(".fm-probe")
    assert probes.count() == 10 and probes.all_inner_texts() == [str(digit) for digit in range(10)]
    page.wait_for_function("[...document.querySelectorAll('.fm-probe img')].every(img => img.complete && img.naturalWidth === 28)")
    print(f"time to first grid: {seconds:.2f} s (page clock: {page.locator('main.fm').get_attribute('data-first-grid-ms')} ms)")

    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run=feature_maps&layer=conv2&cmap=viridis&probe=2")
    page.locator("canvas.fm-grid[data-filters='16']").wait_for()  # only the hash changed: the page redraws in place
    page.wait_for_function("document.querySelector('canvas.fm-heat')?.dataset.steps")
    page.mouse.move(0, 0)
    page.screenshot(path=str(screenshots / "panel.png"))
    assert (screenshots / "panel.png").stat().st_size > 10_000


def test_keyboard_scrubbing_and_reload(page, server):
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    open_panel(page, server, "run=feature_maps&layer=conv1&step=2")
    assert text(page, ".fm-step-label") == "epoch 2"
    before = pixels(page)
    page.locator(".fm-slider").focus()
    page.keyboard.press("ArrowLeft")
    wait_grid(page, 1)
    assert text(page, ".fm-step-label") == "epoch 1"
    assert pixels(page)["print"] != before["print"], "the grid did not change with the step"
    page.keyboard.press("ArrowRight")
    wait_grid(page, 2)
    assert pixels(page)["print"] == before["print"]

    page.keyboard.press("Home")
    wait_grid(page, 0)
    started = time.monotonic()
    for step in range(1, EPOCHS + 1):
        page.keyboard.press("ArrowRight")
        wait_grid(page, step)
    print(f"scrubbing: {EPOCHS / (time.monotonic() - started):.1f} steps/s")
    assert any("/grids?" in url for url in asked), "the panel did not prefetch the layer's steps through the grids route"

    page.get_by_role("button", name="Per layer").click()
    page.get_by_label("Colormap", exact=True).select_option("viridis")
    page.wait_for_function("location.hash.includes('cmap=viridis') && location.hash.includes('norm=layer')")
    page.reload()
    wait_grid(page, EPOCHS)
    assert page.get_by_label("Colormap", exact=True).input_value() == "viridis"
    assert page.get_by_role("button", name="Per layer").get_attribute("aria-pressed") == "true"
    assert text(page, ".fm-step-label") == f"epoch {EPOCHS}"


def test_play_runs_through_the_steps(page, server):
    open_panel(page, server, "run=feature_maps&layer=pool2")  # at the last step: play starts over
    page.get_by_role("button", name="Play").click()
    wait_grid(page, 0)
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    wait_grid(page, EPOCHS)
    expect(page.get_by_role("button", name="Play")).to_be_visible()


def test_filter_detail(page, server, screenshots):
    open_panel(page, server, "run=feature_maps&layer=conv1&probe=3")
    canvas = page.locator("canvas.fm-grid").first
    canvas.hover(position={"x": 12, "y": 12})
    assert re.match(r"filter 0 · min \S+ · max \S+ · mean \S+", text(page, ".fm-pane .fm-tip"))
    canvas.click(position={"x": 12, "y": 12})
    detail = page.locator(".fm-detail")
    detail.wait_for()
    expect(detail.locator("h2")).to_have_text("Filter 0")
    page.wait_for_function("document.querySelectorAll('.fm-detail .fm-chart path.fm-chart-line').length >= 2")
    assert detail.locator(".fm-chart path.fm-line-all").get_attribute("d").count("L") == EPOCHS
    page.wait_for_function(f"document.querySelectorAll('.fm-detail .fm-strip')[0]?.children.length === {EPOCHS + 1}")
    page.wait_for_function("document.querySelectorAll('.fm-detail .fm-strip')[1]?.children.length === 10")
    page.wait_for_function("document.querySelectorAll('.fm-ranking li').length === 10")
    means = [float(value) for value in detail.locator(".fm-rank-value").all_inner_texts()]
    assert means == sorted(means, reverse=True)
    page.mouse.move(0, 0)
    page.screenshot(path=str(screenshots / "detail.png"))

    detail.locator(".fm-strip").first.get_by_role("button", name="epoch 1").click()
    wait_grid(page, 1)
    assert "step=1" in page.evaluate("location.hash")
    page.keyboard.press("Escape")
    detail.wait_for(state="hidden")


def test_heat_strip_jumps_to_filter_and_step(page, server):
    open_panel(page, server, "run=feature_maps&layer=conv2")
    heat = page.locator("canvas.fm-heat")
    heat.wait_for()
    box = heat.bounding_box()
    steps = int(heat.get_attribute("data-steps"))
    heat.click(position={"x": box["width"] * 1.5 / steps, "y": box["height"] * 5.5 / 16})
    wait_grid(page, 1)
    expect(page.locator(".fm-detail h2")).to_have_text("Filter 5")
    expect(page.locator(".fm-step-label")).to_have_text("epoch 1")


def test_weights_and_compare(page, server):
    open_panel(page, server, "run=feature_maps&layer=conv1")
    activations = pixels(page)
    page.get_by_role("button", name="Weights").click()
    page.locator("canvas.fm-grid[data-kind='weights']").wait_for()
    assert "view=weights" in page.evaluate("location.hash")
    assert "kernels 5×5" in text(page, ".fm-summary")
    assert pixels(page)["print"] != activations["print"]

    page.get_by_label("Compare", exact=True).select_option("steps")
    wait_grid(page, 0, pane=0)
    wait_grid(page, EPOCHS, pane=1)
    page.get_by_label("Compare", exact=True).select_option("runs")
    expect(page.get_by_label("Run to compare with")).to_have_value(HOSTILE)
    expect(page.locator(".fm-pane").first.locator(".fm-pane-caption")).to_have_text("feature_maps")
    wait_grid(page, EPOCHS, pane=1)


def test_hostile_run_name_is_text(page, server):
    open_panel(page, server, "")  # runs sort by name: the hostile one comes first
    run = page.get_by_label("Run", exact=True)
    assert run.input_value() == HOSTILE
    assert HOSTILE in run.locator("option").all_inner_texts()
    assert page.evaluate("window.pwned") is None
    assert page.locator("img[src='x']").count() == 0


def test_route_errors_are_shown(page, server):
    page.route(re.compile(r"/grids?\?"), lambda route: route.fulfill(status=404, content_type="text/plain", body="unknown step '3'"))
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run=feature_maps&layer=conv1")
    message = page.locator(".fm-message")
    message.wait_for()
    assert "Couldn't load the grid of conv1 at epoch" in message.inner_text()
    assert "404 unknown step '3'" in message.inner_text()
    assert text(page, ".fm-pane .fm-pane-note") == "Couldn't load this grid."
    assert page.locator(".fm-toolbar").is_visible()


def test_empty_state(page, server):
    page.route("**/runs", lambda route: route.fulfill(json={"runs": []}))
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps")
    empty = page.locator(".fm-empty")
    empty.wait_for()
    code = empty.inner_text()
    for line in ("from tb_featuremaps import FeatureMapsCallback", 'FeatureMapsCallback("logs")', "callbacks=[callback]", "tensorboard --logdir"):
        assert line in code


def test_new_steps_appear_while_open(page, server, training):
    open_panel(page, server, "run=feature_maps&layer=pool1")
    assert text(page, ".fm-step-label") == f"epoch {EPOCHS}"
    training.more(1)
    wait_grid(page, EPOCHS + 1)  # follow latest is on by default
    assert text(page, ".fm-step-label") == f"epoch {EPOCHS + 1}"
    assert page.locator(".fm-slider").get_attribute("max") == str(EPOCHS + 1)
    page.wait_for_function(f"document.querySelector('canvas.fm-heat')?.dataset.steps === '{EPOCHS + 2}'")
