"""The "Looks for" view and the "still changing" heat strip in a real browser, over a log written with a pool.

The log comes from ``FeatureMapsWriter`` with a pool (:func:`helpers.logs.write_pool_run`): half of
``conv``'s filters respond the same at every step (they stop changing), the others anew. Uses
conftest's browser fixtures (skipped without Debian's chromium).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers.browser import needs_chromium
from helpers.logs import POOL_LABELS, write_pool_run
from helpers.tensorboard import serving
from playwright.sync_api import expect

from tb_featuremaps import FeatureMapsWriter

pytestmark = needs_chromium()

STEPS = list(range(12))
FILTERS = 4
TOP_K = 4
LOOKS = ".fm-looks-view:first-child canvas.fm-looks"  # the main sheet (a second one shows only when comparing)
MIN_STEPS_PER_SECOND = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("looks_for")
    write_pool_run(logdir / "pool", STEPS, top_k=TOP_K, filters=FILTERS)
    with serving(logdir, ["--load_fast=false"], runs=1) as base:
        yield base


def open_looks(page, server, hash_: str = "") -> None:
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run=pool&layer=conv&view=strongest{hash_}")
    page.locator(f"{LOOKS}[data-step]").wait_for()


def wait_looks(page, step: int) -> None:
    page.wait_for_function(f"document.querySelector('{LOOKS}')?.dataset.step === '{step}'")


def fingerprint(page, selector: str) -> int:
    return page.eval_on_selector(
        selector,
        """canvas => {
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let print = 0;
            for (let i = 0; i < data.length; i += 4) print = (print * 31 + data[i] + 7 * data[i + 1] + 13 * data[i + 2]) % 1000000007;
            return print;
        }""",
    )


def test_looks_for_shows_patches_and_scrubbing_changes_them(page, server):
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    open_looks(page, server, "&step=5")
    expect(page.get_by_role("button", name="Looks for")).to_have_attribute("aria-pressed", "true")
    summary = page.locator(".fm-looks-view:first-child .fm-view-summary").inner_text()
    assert f"each filter's {TOP_K} strongest of 12 pool inputs" in summary and "receptive fields of 3×3 input pixels" in summary
    before = fingerprint(page, LOOKS)
    page.locator(".fm-slider").focus()
    page.keyboard.press("ArrowRight")
    wait_looks(page, 6)
    assert fingerprint(page, LOOKS) != before, "the patches did not change with the step"
    assert any("/grids?" in url and "kind=strongest" in url for url in asked), "the sheets were not prefetched through the grids route"

    # Hovering a patch names its pool input: filter 0's first patch lies below the filter's label.
    canvas = page.locator(LOOKS)
    canvas.hover(position={"x": 10, "y": 24})
    tip = page.locator(".fm-looks-view:first-child .fm-tip")
    expect(tip).to_have_text(re.compile(r"filter 0 · rank 1 · label digit\d · input \d+ · activation \S+"))

    # Scrubbing every step once the sheets are cached, as fast as the page draws them.
    page.wait_for_timeout(500)  # the prefetch of every step's sheet
    rate = page.evaluate(
        """async (steps) => {
            const slider = document.querySelector('.fm-slider');
            const canvas = document.querySelector('canvas.fm-looks');
            const started = performance.now();
            for (const [index, step] of steps.entries()) {
                slider.value = String(index);
                slider.dispatchEvent(new Event('input'));
                while (canvas.dataset.step !== String(step)) await new Promise((resolve) => setTimeout(resolve, 0));
            }
            return steps.length / ((performance.now() - started) / 1000);
        }""",
        STEPS,
    )
    print(f"scrubbing the strongest patches: {rate:.0f} steps/s")
    assert rate >= MIN_STEPS_PER_SECOND


def test_a_filter_opens_its_film_strip_and_top_inputs(page, server):
    open_looks(page, server, "&step=3")
    page.locator(LOOKS).click(position={"x": 10, "y": 24})
    detail = page.locator(".fm-detail")
    expect(detail.locator("h2")).to_have_text("Filter 0")
    strip = detail.locator(".fm-detail-section").nth(1).locator(".fm-strip")
    page.wait_for_function(f"document.querySelector('.fm-detail .fm-detail-section:nth-of-type(2) .fm-strip')?.children.length === {len(STEPS)}")
    assert strip.locator("canvas").count() == len(STEPS)
    assert strip.get_by_role("button", name="epoch 3").get_attribute("aria-pressed") == "true"
    patches = detail.locator(".fm-patches figure")
    expect(patches).to_have_count(TOP_K)
    captions = patches.locator("figcaption").all_inner_texts()
    assert all(caption.split(" · ")[0] in POOL_LABELS for caption in captions), captions
    page.wait_for_function("document.querySelector('.fm-top-input img')?.naturalWidth === 8")
    assert "Its strongest input: label digit" in detail.locator(".fm-top-input").inner_text()
    # The box of the receptive field the strongest patch came from, on the 8x8 input, as the topk route gives it.
    top = page.evaluate("fetch('./topk?run=pool&layer=conv&step=3').then((answer) => answer.json())")
    record = dict(zip(top["fields"], top["values"][0][0]))
    style = detail.locator(".fm-top-input .fm-field-box").get_attribute("style")
    expected = {"top": record["top"] * 12.5, "left": record["left"] * 12.5, "height": 37.5, "width": 37.5}  # 100 % / 8 pixels; 3x3 patches
    for side, percent in expected.items():
        assert re.search(rf"(^|; ){side}: {percent:g}%", style), (side, percent, style)

    strip.get_by_role("button", name="epoch 7").click()
    wait_looks(page, 7)
    assert "step=7" in page.evaluate("location.hash")


def test_comparing_two_steps_shows_both_sheets_side_by_side(page, server):
    open_looks(page, server, "&step=9&compare=steps&compareStep=0")
    page.wait_for_function("[...document.querySelectorAll('canvas.fm-looks')].map((canvas) => canvas.dataset.step).join() === '0,9'")
    views = page.locator(".fm-looks-view")
    expect(views.nth(1)).to_be_visible()
    first, second = (views.nth(index).locator("canvas.fm-looks").bounding_box() for index in (0, 1))
    assert first["x"] + first["width"] <= second["x"] and abs(first["y"] - second["y"]) < 1, (first, second)  # side by side
    prints = page.eval_on_selector_all(
        "canvas.fm-looks",
        "canvases => canvases.map((canvas) => canvas.toDataURL())",
    )
    assert prints[0] != prints[1], "both sides show the same sheet"
    assert "epoch 9 (slider)" in views.nth(1).locator(".fm-pane-caption").inner_text()
    views.nth(0).get_by_label("Step to compare with").select_option("4")
    page.wait_for_function("document.querySelector('canvas.fm-looks').dataset.step === '4'")
    assert "compareStep=4" in page.evaluate("location.hash")
    page.get_by_label("Compare", exact=True).select_option("off")
    expect(views.nth(1)).to_be_hidden()


def test_the_arrow_keys_move_between_filters_and_enter_opens_one(page, server):
    open_looks(page, server, "&step=2")
    canvas = page.locator(LOOKS)
    canvas.focus()
    before = fingerprint(page, LOOKS)
    page.keyboard.press("ArrowRight")  # the first press puts the cursor on filter 0
    expect(canvas).to_have_attribute("data-cursor", "0")
    page.keyboard.press("ArrowRight")
    expect(canvas).to_have_attribute("data-cursor", "1")
    expect(page.locator(".fm-looks-view:first-child .fm-tip")).to_have_text(re.compile(r"filter 1 · rank 1 · label digit\d · input \d+"))
    assert fingerprint(page, LOOKS) != before, "the cursor's outline was not drawn"
    page.keyboard.press("Enter")
    expect(page.locator(".fm-detail h2")).to_have_text("Filter 1")


def test_still_changing_heat_strip_and_summary(page, server):
    open_looks(page, server, "&step=4")
    changing = page.locator(".fm-changing")
    expect(changing).to_have_text(f"2 of {FILTERS} filters still changing at epoch 4 (more than 5 % since the previous step)")
    page.get_by_role("button", name="Still changing").click()
    page.locator("canvas.fm-heat[data-quantity='change']").wait_for()
    assert page.locator("canvas.fm-heat").get_attribute("data-steps") == str(len(STEPS))
    assert "heat=change" in page.evaluate("location.hash")
    page.get_by_role("button", name="First step").click()
    wait_looks(page, 0)
    expect(changing).to_contain_text("Not known at epoch 0")
    page.get_by_role("button", name="Mean activation").click()
    page.locator("canvas.fm-heat[data-quantity='mean']").wait_for()


def test_the_still_changing_rule_is_the_one_the_listing_describes(page, server):
    """The panel takes a filter's change from the fields the listing's ``kinds.change.measure`` names (format/kinds/change.py):
    told to measure kernels only, it counts every filter of ``conv`` as changing (its kernels are new at each step)."""

    def kernels_only(route):
        response = route.fetch()
        listing = response.json()
        listing.setdefault("kinds", {}).setdefault("change", {})["measure"] = ["kernel"]
        route.fulfill(response=response, json=listing)

    page.route(re.compile(r"/data/plugin/feature_maps/runs(\?|$)"), kernels_only)
    open_looks(page, server, "&step=4")
    expect(page.locator(".fm-changing")).to_have_text(re.compile(rf"^{FILTERS} of {FILTERS} filters still changing at epoch 4 "))


def test_a_dead_filter_that_comes_alive_counts_as_still_changing(page, tmp_path):
    """Its change is +Infinity (docs/format.md), carried as "Infinity" in the route's JSON: the panel counts it as changing."""
    rng = np.random.default_rng(3)
    pool = rng.uniform(0, 1, (12, 8, 8, 1)).astype(np.float32)
    before = np.abs(rng.normal(size=(12, 6, 6, FILTERS))).astype(np.float32)
    before[..., 0] = 0
    after = before * 1.001
    after[..., 0] = np.abs(rng.normal(size=(12, 6, 6)))
    with FeatureMapsWriter(tmp_path / "alive", np.zeros((2, 8, 8, 1), np.float32), ["a", "b"], pool=pool, write_images=False) as writer:
        for step, outputs in enumerate((before, after)):
            assert writer.write(step, {"conv": outputs[:2]}, pool_activations={"conv": outputs})
    with serving(tmp_path, ["--load_fast=false"], runs=1) as base:
        page.goto(f"{base}/data/plugin_entry.html?name=feature_maps#run=alive/feature_maps&layer=conv&view=strongest&step=1")
        expect(page.locator(".fm-changing")).to_have_text(re.compile(rf"^1 of {FILTERS} filters still changing at step 1 "))
