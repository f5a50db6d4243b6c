"""The panel on logs that test its trust: errors of one run, crafted pool indices, long labels, black patches, layers
without a class, and a film strip of every step, in a real browser (skipped without Debian's chromium).

Runs (``--load_fast=false``):

- ``good``: ``FeatureMapsWriter`` with a pool of 6 inputs labelled by 300-character labels, input 0 all black and
  every filter's strongest; layer ``conv1`` without a class name (as a JAX loop logs it), 21 steps;
- ``negative``: a strongest sheet, a pool and a ``topk`` series whose every input index is -1 (as no producer writes);
- ``broken``: a strongest sheet without its ``topk`` series, so "Looks for" reports an error;
- ``wide``: a strongest sheet and ``topk`` of 150 ranks per filter, more than the format's ``MAX_TOP_K``.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers.browser import needs_chromium
from helpers.logs import POOL_FIELD, log_writer, write_layer_step
from helpers.tensorboard import fetch, serving
from playwright.sync_api import expect

from tb_featuremaps import render
from tb_featuremaps.format import metadata
from tb_featuremaps.writer import LayerDescription
from tb_featuremaps.writer.summary import SummaryWriter

pytestmark = needs_chromium()

STEPS = 21
POOL = 6
LONG_LABELS = [f"{index}: " + "a pool input with a very long label " * 9 for index in range(POOL)]
LOOKS = ".fm-looks-view:first-child canvas.fm-looks"


def write_good(run_dir) -> None:
    rng = np.random.default_rng(3)
    pool = rng.uniform(0.2, 1.0, (POOL, 8, 8, 1)).astype(np.float32)
    pool[0] = 0.0  # a black picture: its patches are black
    with log_writer(run_dir, pool=pool, pool_labels=LONG_LABELS, top_k=3, background=False) as writer:
        for step in range(STEPS):
            responses = rng.normal(size=(POOL, 8, 8, 4)).astype(np.float32)
            responses[0] += 100.0  # input 0 is every filter's strongest
            maps = rng.normal(size=(2, 8, 8, 4)).astype(np.float32)
            layers = {"conv1": LayerDescription("", receptive_field=POOL_FIELD)}
            assert writer.write(step, {"conv1": maps}, layers=layers, pool_activations={"conv1": responses})


def write_by_hand(run_dir, inputs: float | None, ranks: int = 2) -> None:
    """Layer ``conv`` (2 filters) with a strongest sheet of ``ranks`` ranks at step 0; its ``topk`` all ``inputs`` (None: no topk)."""
    writer = SummaryWriter(str(run_dir))
    write_layer_step(writer, 0, "conv", 0, np.random.default_rng(0).normal(size=(2, 4, 4, 2)).astype(np.float32), ["a", "b"])
    picture = render.encode_png(np.full((8, 8), 128, np.uint8))
    writer.write_pool(0, [picture, picture], 8, 8, ["x", "y"], [8, 8, 1], [0.0, 1.0])
    layout = metadata.GridLayout(3, 3, 2, ranks, 1)
    extra = metadata.StrongestExtra(top_k=ranks, pool_size=2, patch_size=(8, 8))
    info = metadata.LayerInfo("strongest", "conv", "Conv2D", 0, [None, 4, 4, 2], layout, 2, 2, ["pool"], "epoch", tiles_per_filter=ranks, extra=extra)
    topk = np.zeros((2, ranks, len(metadata.TOPK_FIELDS)), np.float32)
    topk[..., 0], topk[..., 1] = inputs if inputs is not None else 0.0, 1.5
    tensors = {} if inputs is None else {metadata.KIND_TOPK: topk}
    writer.write_layer(0, info, [render.encode_png(np.zeros((layout.height, layout.width), np.uint8))], tensors=tensors, images_copy=False)
    writer.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("trust")
    write_good(logdir / "good")
    write_by_hand(logdir / "negative", -1.0)
    write_by_hand(logdir / "broken", None)
    write_by_hand(logdir / "wide", 0.0, ranks=150)
    with serving(logdir, ["--load_fast=false"], runs=4) as base:
        yield base


def open_hash(page, server, hash_: str) -> None:
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#{hash_}")


def test_an_error_of_one_run_is_cleared_when_another_is_chosen(page, server):
    open_hash(page, server, "run=broken&layer=conv&view=strongest")
    message = page.locator(".fm-message")
    expect(message).to_contain_text("Couldn't load which pool inputs conv's patches are")
    page.evaluate("location.hash = 'run=good&layer=conv1&view=strongest'")
    page.locator(f"{LOOKS}[data-step='{STEPS - 1}']").wait_for()
    expect(message).to_be_hidden()


def test_a_negative_pool_index_is_never_asked_for(page, server):
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    open_hash(page, server, "run=negative&layer=conv&view=strongest&filter=0")
    captions = page.locator(".fm-detail .fm-patches figcaption")
    expect(captions).to_have_count(2)
    expect(captions.first).to_have_text("–")
    assert page.locator(".fm-detail .fm-top-input").count() == 0
    assert not [url for url in asked if "/pool?" in url], asked
    status, body = fetch(f"{server}/data/plugin/feature_maps/pool?run=negative&index=-1")
    assert status == 400 and b"non-negative integer" in body


def test_long_labels_a_legend_outlined_patches_and_no_missing_class(page, server):
    open_hash(page, server, f"run=good&layer=conv1&view=strongest&filter=0&step={STEPS - 1}")
    detail = page.locator(".fm-detail")
    captions = detail.locator(".fm-patches figcaption")
    expect(captions).to_have_count(3)
    page.locator(".fm-top-input p").wait_for()
    sides = page.evaluate(
        """() => {
            const right = document.querySelector('.fm-detail').getBoundingClientRect().right;
            const parts = [...document.querySelectorAll('.fm-detail .fm-patches figcaption, .fm-detail .fm-top-input p')];
            return parts.map((part) => ({right: part.getBoundingClientRect().right, limit: right, title: part.title, text: part.textContent,
                                         clipped: part.scrollWidth > part.clientWidth}));
        }"""
    )
    for side in sides:
        assert side["right"] <= side["limit"] + 0.5, side
        assert side["title"] == side["text"] and any(label in side["title"] for label in LONG_LABELS), side
        assert side["clipped"], "a 300-character label fits in no caption: it is cut with an ellipsis"
    assert "label" in detail.locator(".fm-patches-legend").inner_text() and "activation" in detail.locator(".fm-patches-legend").inner_text()
    outline = page.eval_on_selector(".fm-detail canvas.fm-patch", "canvas => getComputedStyle(canvas).outlineStyle")
    assert outline == "solid"
    # The sheet: input 0's black patch has a frame of its own, one pixel outside it (the canvas is transparent elsewhere).
    framed = page.eval_on_selector(
        LOOKS,
        """canvas => {
            const ratio = canvas.width / canvas.getBoundingClientRect().width;
            const pixel = (x, y) => canvas.getContext('2d').getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data;
            return {frame: pixel(2, 30)[3], gap: pixel(1, 30)[3]};
        }""",
    )
    assert framed["frame"] > 0 and framed["gap"] == 0, framed
    option = page.locator(".fm-toolbar option[value='conv1']").inner_text()
    assert option == "conv1 — 8×8×4", option
    summary = page.locator(".fm-looks-view:first-child .fm-view-summary").inner_text()
    assert summary.startswith("conv1 · output 8×8×4 · "), summary


def test_the_film_strip_shows_every_step_when_they_fit(page, server):
    open_hash(page, server, "run=good&layer=conv1&filter=0")
    page.wait_for_function("document.querySelector('.fm-detail .fm-detail-section:nth-of-type(2) .fm-strip')?.children.length > 0")
    thumbs = page.locator(".fm-detail .fm-detail-section").nth(1).locator(".fm-strip .fm-thumb")
    expect(thumbs).to_have_count(STEPS)


def test_a_sheet_of_more_ranks_than_the_cap_shows_the_first_max_top_k(page, server):
    open_hash(page, server, "run=wide&layer=conv&view=strongest&filter=1")
    expect(page.locator(".fm-detail .fm-patches figure")).to_have_count(metadata.MAX_TOP_K)
    summary = page.locator(".fm-looks-view:first-child .fm-view-summary").inner_text()
    assert f"each filter's {metadata.MAX_TOP_K} strongest" in summary, summary
