"""Hostile names and a 100-run logdir in the Feature Maps panel, in a real browser.

Run names, layer names, layer class, step unit and probe labels carrying HTML and script, quotes,
``../`` and non-ASCII text must be shown as text wherever the panel shows them, and never run.
Uses conftest's browser fixtures (skipped without Debian's chromium).
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers.browser import needs_chromium, open_panel, wait_grid
from helpers.logs import write_layer_step, write_log, write_probes_by_hand
from helpers.tensorboard import fetch_json, serving
from playwright.sync_api import expect

from tb_featuremaps.writer.summary import SummaryWriter

RUNS = ["<img src=x onerror=alert(1)>", "quo\"te's & <b>amp</b>", "ünï côdé ☃ 層/<svg onload=alert(2)>"]
LAYERS = ["<img src=x onerror=alert(3)>", "../../etc/passwd", "a\"b'c\\d", "層/ü sp"]
CLASS = "<script>alert(4)</script>"
UNIT = "<i onmouseover=alert(5)>epoch</i>"
LABELS = ["<img src=x onerror=alert(6)>", "\"'&", "../x"]
MANY = 100
STEP = 2  # the last of steps 0..2

pytestmark = needs_chromium()


def write_hostile_run(run_dir: Path) -> None:
    """Steps 0..2 of the four hostile layers, with hostile probe labels, class and step unit.

    By hand: ``FeatureMapsWriter`` refuses a step unit other than epoch, batch or step.
    """
    rng = np.random.default_rng(0)
    writer = SummaryWriter(str(run_dir))
    write_probes_by_hand(writer, 0, rng.integers(0, 256, (len(LABELS), 8, 8), dtype=np.uint8), LABELS)
    for step in range(STEP + 1):
        for index, layer in enumerate(LAYERS):
            write_layer_step(writer, step, layer, index, rng.normal(size=(len(LABELS), 6, 6, 4)).astype(np.float32), LABELS, CLASS, UNIT)
    writer.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """A TensorBoard (Python loader) over the hostile runs and 100 plain ones; yields its base URL."""
    logdir = tmp_path_factory.mktemp("hostile_browser")
    for run in RUNS:
        write_hostile_run(logdir / run)
    for index in range(MANY):
        write_log(logdir / f"run_{index:03d}", steps=[0])
    with serving(logdir, ["--load_fast", "false"], runs=MANY + len(RUNS)) as base:
        yield base


def test_hostile_names_are_shown_as_text(page, server):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_panel(page, server, urllib.parse.urlencode({"run": RUNS[0], "layer": LAYERS[0], "filter": 0}))
    run_picker, layer_picker = page.get_by_label("Run", exact=True), page.get_by_label("Layer", exact=True)
    expect(run_picker).to_have_value(RUNS[0])  # the selection round-trips through the URL's hash
    expect(page.locator(".fm-detail-sub")).to_have_text(f"{LAYERS[0]} · {UNIT} {STEP} · probe 0 (label {LABELS[0]})")
    for run in RUNS:
        run_picker.select_option(run)
        for layer in LAYERS:
            layer_picker.select_option(layer)
            expect(page.locator(".fm-summary")).to_have_text(f"{layer} · {CLASS} · output 6×6×4 · 4 filters")
            wait_grid(page, STEP)
            expect(page.locator(".fm-step-label")).to_have_text(f"{UNIT} {STEP}")
        assert page.locator(".fm-probe").all_inner_texts() == LABELS
    assert RUNS[0] in run_picker.locator("option").all_inner_texts()
    assert [text.split(" — ")[0] for text in layer_picker.locator("option").all_inner_texts()] == LAYERS
    page.get_by_label("Compare", exact=True).select_option("runs")
    page.get_by_label("Run to compare with").select_option(RUNS[1])
    expect(page.locator(".fm-run-name")).to_have_text(RUNS[-1])
    wait_grid(page, STEP, pane=1)
    handlers = page.evaluate("[...document.querySelectorAll('*')].flatMap(e => [...e.attributes].filter(a => a.name.startsWith('on')))")
    assert (dialogs, handlers, page.locator("img[src='x'], svg[onload]").count()) == ([], [], 0)


def test_run_picker_lists_a_hundred_runs(page, server):
    """All runs are options, in the ``runs`` route's order; picking the last one draws its grid."""
    open_panel(page, server, "")
    names = [entry["run"] for entry in fetch_json(server + "/data/plugin/feature_maps/runs")["runs"]]
    run_picker = page.get_by_label("Run", exact=True)
    assert run_picker.locator("option").all_inner_texts() == names and len(names) == MANY + len(RUNS)
    started = time.monotonic()
    run_picker.select_option(f"run_{MANY - 1:03d}")
    expect(page.locator(".fm-summary")).to_contain_text("conv · Conv2D")
    wait_grid(page, 0)
    print(f"picking run {MANY - 1} of {len(names)} drew its grid in {time.monotonic() - started:.2f} s")
