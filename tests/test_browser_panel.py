"""The panel's decoding, layout, theme, toolbar, notices and step units, in a real browser.

The logs are written by hand (``SummaryWriter``, no training) so every gray level and value is
known: the colours on the canvases can be predicted with ``metadata``'s gray-level rule. Uses
conftest's browser fixtures (skipped without Debian's chromium).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers.browser import WAIT_MS, needs_chromium, open_panel, wait_grid
from helpers.logs import write_probes_by_hand
from helpers.tensorboard import fetch_json, serving
from playwright.sync_api import expect

from tb_featuremaps import render
from tb_featuremaps.format import metadata
from tb_featuremaps.writer.summary import SummaryWriter

pytestmark = needs_chromium()

LABELS = ["a", "b"]
STEPS = [0, 1, 2]
BATCH_STEPS = [0, 10, 20]
# Dense outputs [probes, filters] at the last step: probe 1 widens the layer's range to -4 … 2.
DENSE = np.array([[-1.0, -0.5, 0.0, 0.5, 1.0, 1.5], [-4.0, 2.0, 0.25, -0.25, 0.75, -2.0]], np.float32)
STRIP_LENGTH = 40
MANY = 48
# ColorBrewer's RdBu, blue < 0 < red, as the panel's colormaps.js interpolates it.
RDBU = "053061 175290 2a71b2 3f8ec0 6bacd1 9bc9e0 c2ddec e0ecf3 f7f6f6 fbe5d8 fbccb4 f5aa89 e48066 d05548 ba2832 930e26 67001f"


def js_round(value: float) -> int:
    return math.floor(value + 0.5)


def colour_table(stops: str) -> list[tuple[int, int, int]]:
    """256 RGB entries, linear between the stops."""
    colours = [tuple(int(hex_[i : i + 2], 16) for i in (0, 2, 4)) for hex_ in stops.split()]
    table = []
    for index in range(256):
        position = index / 255 * (len(colours) - 1)
        low = min(math.floor(position), len(colours) - 2)
        fraction = position - low
        table.append(tuple(js_round(colours[low][c] * (1 - fraction) + colours[low + 1][c] * fraction) for c in range(3)))
    return table


GRAY, DIVERGING = colour_table("000000 ffffff"), colour_table(RDBU)


def conv_maps(step: int) -> np.ndarray:
    """[2, 4, 4, 3]: a positive ramp, a ramp through zero, a constant (hi == lo)."""
    ramp = np.linspace(0.0, 1.0, 16, dtype=np.float32).reshape(4, 4)
    filters = np.stack([0.5 + 1.5 * ramp, 2 * ramp - 1, np.full((4, 4), 0.7, np.float32)], axis=-1)
    return np.stack([filters, 2 * filters]) * (1 + step)


def strip_maps(step: int) -> np.ndarray:
    """[2, 1, 40, 5]: 1-D outputs, each strip a different wave."""
    x = np.arange(STRIP_LENGTH, dtype=np.float32)
    waves = np.stack([np.sin(x * (f + 1) / 7 + step) for f in range(5)], axis=-1)
    return np.stack([waves, 0.5 * waves])[:, None]


def many_maps(step: int) -> np.ndarray:
    return np.random.default_rng(step).normal(1.0, 1.0, size=(2, 8, 8, MANY)).astype(np.float32)


def dense_maps(step: int) -> np.ndarray:
    return (DENSE * (1 + step) / 3)[:, None, None, :]


def levels_for(maps: np.ndarray, normalization: str) -> tuple[np.ndarray, np.ndarray]:
    """The stored gray levels [P, h, w, F] by the format's rule, and the stats [P, F, 5]."""
    stats = render.filter_stats(maps)
    lo, hi = (value[:, None, None, :] for value in metadata.tile_ranges(normalization, stats))
    scale = np.where(hi > lo, 255.0 / np.where(hi > lo, hi - lo, 1), 0.0)
    return np.clip(np.floor((maps - lo) * scale), 0, 255).astype(np.uint8), stats


def decoded(maps: np.ndarray, normalization: str) -> np.ndarray:
    """What the panel must decode each stored level to: metadata.levels_to_values, [P, h, w, F]."""
    levels, stats = levels_for(maps, normalization)
    lo, hi = metadata.tile_ranges(normalization, stats)
    return np.moveaxis(metadata.levels_to_values(np.moveaxis(levels, -1, 1), lo, hi), 1, -1)


def write_layer(writer, step, name, index, maps, layer_class, output_shape, step_unit="epoch", normalization="per_filter"):
    _, height, width, filters = maps.shape
    layout = metadata.GridLayout.for_tiles(filters, height, width)
    info = metadata.LayerInfo(
        "activations", name, layer_class, index, output_shape, layout, filters, filters, LABELS, step_unit, normalization=normalization
    )
    levels, stats = levels_for(maps, normalization)
    writer.write_layer(step, info, render.encode_all(render.tile(levels, layout)), tensors={metadata.KIND_STATS: stats}, images_copy=False)


def write_run(run_dir: Path, steps, step_unit: str, layers) -> None:
    writer = SummaryWriter(str(run_dir))
    write_probes_by_hand(writer, steps[0], np.random.default_rng(0).integers(0, 256, (len(LABELS), 4, 4), dtype=np.uint8), LABELS)
    for position, step in enumerate(steps):
        for index, (name, make, layer_class, shape, normalization) in enumerate(layers):
            write_layer(writer, step, name, index, make(position), layer_class, shape, step_unit, normalization)
    writer.close()


LAYERS = [
    ("conv", conv_maps, "Conv2D", [None, 4, 4, 3], "per_filter"),
    ("strip", strip_maps, "Conv1D", [None, STRIP_LENGTH, 5], "per_filter"),
    ("many", many_maps, "Conv2D", [None, 8, 8, MANY], "per_filter"),
    ("dense", dense_maps, "Dense", [None, 6], "per_layer"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """TensorBoard (Python loader) over run ``levels`` (epochs 0..2) and run ``batches`` (batches 0, 10, 20)."""
    logdir = tmp_path_factory.mktemp("panel_logs")
    write_run(logdir / "levels", STEPS, "epoch", LAYERS)
    write_run(logdir / "batches", BATCH_STEPS, "batch", LAYERS[:1])
    with serving(logdir, ["--load_fast", "false"], runs=2) as base:
        yield base


# Pixels ---------------------------------------------------------------------------------------

_CANVAS = """(canvas) => {
    const { width, height } = canvas;
    const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
    const columns = new Array(width).fill(false), rows = new Array(height).fill(false);
    for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++)
            if (data[(y * width + x) * 4 + 3] > 0) columns[x] = rows[y] = true;
    const runs = (marks) => {
        const out = [];
        marks.forEach((on, i) => { if (on && (i === 0 || !marks[i - 1])) out.push([i, i + 1]); else if (on) out[out.length - 1][1] = i + 1; });
        return out;
    };
    return { xs: runs(columns), ys: runs(rows), width, height, ratio: width / canvas.getBoundingClientRect().width,
             rgba: Array.from(data) };
}"""


class Canvas:
    """A canvas's pixels, and its tiles found from them (opaque blocks separated by transparent gaps)."""

    def __init__(self, page, selector: str, index: int = 0):
        self.locator = page.locator(selector).nth(index)
        answer = self.locator.evaluate(_CANVAS)
        self.width, self.height, self.ratio = answer["width"], answer["height"], answer["ratio"]
        self.xs, self.ys = answer["xs"], answer["ys"]
        self.rgba = np.array(answer["rgba"], np.uint8).reshape(self.height, self.width, 4)

    def tile(self, index: int) -> tuple[int, int, int, int]:
        """(x, y, width, height) in canvas pixels of tile ``index`` (row-major)."""
        (x0, x1), (y0, y1) = self.xs[index % len(self.xs)], self.ys[index // len(self.xs)]
        return x0, y0, x1 - x0, y1 - y0

    def colour(self, x: float, y: float) -> tuple[int, int, int]:
        return tuple(int(c) for c in self.rgba[int(y), int(x), :3])

    def tile_pixel(self, index: int, row: int, col: int, tile_height: int, tile_width: int) -> tuple[float, float]:
        """Canvas coordinates of the centre of source pixel (row, col) of a tile."""
        x, y, width, height = self.tile(index)
        return x + (col + 0.5) * width / tile_width, y + (row + 0.5) * height / tile_height

    def hover(self, page, x: float, y: float) -> None:
        box = self.locator.bounding_box()
        page.mouse.move(box["x"] + x / self.ratio, box["y"] + y / self.ratio)


def assert_colour(actual, expected, what: str, tolerance: int = 3) -> None:
    assert max(abs(a - e) for a, e in zip(actual, expected)) <= tolerance, f"{what}: {actual} != {expected}"


def expected_colour(value: float, table, lo: float, hi: float, diverging: bool) -> tuple[int, int, int]:
    """The colour the panel must give a decoded value on the display scale lo … hi."""
    if diverging:
        t = 0.5 + value / (2 * (max(abs(lo), abs(hi)) or 1))
    else:
        t = (value - lo) / (hi - lo) if hi > lo else 0.0
    return table[js_round(min(1.0, max(0.0, t)) * 255)]


def tip_value(page) -> float:
    match = re.search(r"value (\S+)", page.locator(".fm-pane .fm-tip").first.inner_text())
    assert match, page.locator(".fm-pane .fm-tip").first.inner_text()
    return float(match.group(1).replace("−", "-"))


def reopen(page, server: str, hash_: str) -> None:
    """Loads the panel afresh (a new hash alone redraws in place, and the old grid would satisfy the wait)."""
    page.goto("about:blank")
    open_panel(page, server, hash_)


def number(text: str) -> float:
    return float(re.match(r"\s*([−\-+]?[0-9.e+\-]+)", text).group(1).replace("−", "-"))


# Task 1: the gray-level rule ---------------------------------------------------------------------


def test_per_layer_tiles_decode_by_the_layer_range(page, server):
    """1x1 Dense tiles normalised per layer (over every probe): per-layer gray, RdBu, hover, legend, detail."""
    last = len(STEPS) - 1
    values = decoded(dense_maps(last), "per_layer")[:, 0, 0, :]  # [P, F]
    lo, hi = float(dense_maps(last).min()), float(dense_maps(last).max())  # the step's range, from probe 1
    open_panel(page, server, "run=levels&layer=dense&norm=layer")
    page.mouse.move(0, 0)
    canvas = Canvas(page, "canvas.fm-grid")
    assert len(canvas.xs) * len(canvas.ys) >= 6
    for f in range(6):
        x, y = canvas.tile_pixel(f, 0, 0, 1, 1)
        assert_colour(canvas.colour(x, y), expected_colour(values[0, f], GRAY, lo, hi, False), f"probe 0 filter {f}, gray per layer")
    legend = page.locator(".fm-legend")
    assert number(legend.locator(".fm-scale-low").inner_text()) == pytest.approx(lo, rel=0.01)
    assert number(legend.locator(".fm-scale-high").inner_text()) == pytest.approx(hi, rel=0.01)

    # Hover: the value under the pointer, decoded by the same rule.
    for f in (0, 3, 5):
        canvas.hover(page, *canvas.tile_pixel(f, 0, 0, 1, 1))
        expect(page.locator(".fm-pane .fm-tip").first).to_contain_text(f"filter {f} ")
        assert tip_value(page) == pytest.approx(values[0, f], abs=(hi - lo) / 255)

    # Diverging, per filter: a per-layer tile's own range is the layer's, so it is centred on max(|lo|, |hi|).
    reopen(page, server, "run=levels&layer=dense&cmap=rdbu&probe=1")
    page.mouse.move(0, 0)
    page.wait_for_function("document.querySelector('.fm-probe[aria-pressed=true]')?.innerText === 'b'")
    canvas = Canvas(page, "canvas.fm-grid")
    for f in range(6):
        x, y = canvas.tile_pixel(f, 0, 0, 1, 1)
        assert_colour(canvas.colour(x, y), expected_colour(values[1, f], DIVERGING, lo, hi, True), f"probe 1 filter {f}, RdBu")
    assert_colour(canvas.colour(*canvas.tile_pixel(0, 0, 0, 1, 1)), DIVERGING[0], "-max(|lo|, |hi|) is the bluest")

    # The detail view's enlarged tile, per layer, RdBu, probe 0.
    reopen(page, server, "run=levels&layer=dense&cmap=rdbu&norm=layer&filter=4")
    big = page.locator(".fm-detail .fm-big canvas")
    big.wait_for()
    tile = Canvas(page, ".fm-detail .fm-big canvas")
    assert_colour(tile.colour(tile.width / 2, tile.height / 2), expected_colour(values[0, 4], DIVERGING, lo, hi, True), "detail of filter 4")


def test_per_filter_tiles_decode_by_their_stats(page, server):
    """4x4 conv tiles: each source pixel's colour from min + g/255·(max − min) of its filter, per layer and centred."""
    last = len(STEPS) - 1
    maps = conv_maps(last)
    values = decoded(maps, "per_filter")  # [P, 4, 4, 3]
    stats = render.filter_stats(maps)
    lo, hi = float(np.nanmin(stats[..., 0])), float(np.nanmax(stats[..., 1]))  # over every probe and filter
    open_panel(page, server, "run=levels&layer=conv&norm=layer&cmap=rdbu&probe=0")
    page.mouse.move(0, 0)
    canvas = Canvas(page, "canvas.fm-grid")
    for f in range(3):
        for row, col in ((0, 0), (1, 2), (3, 3)):
            x, y = canvas.tile_pixel(f, row, col, 4, 4)
            expected = expected_colour(values[0, row, col, f], DIVERGING, lo, hi, True)
            assert_colour(canvas.colour(x, y), expected, f"filter {f} ({row}, {col}), per layer, RdBu")
    canvas.hover(page, *canvas.tile_pixel(2, 1, 1, 4, 4))
    assert tip_value(page) == pytest.approx(0.7 * (1 + last), rel=1e-3)  # hi == lo: the tile is lo everywhere


# Task 2: tiles drawn large enough, grids using the width --------------------------------------


def test_strips_and_single_pixels_are_readable(page, server):
    open_panel(page, server, "run=levels&layer=strip")
    page.mouse.move(0, 0)
    canvas = Canvas(page, "canvas.fm-grid")
    pane = page.locator(".fm-pane").first.bounding_box()["width"]
    drawn = canvas.locator.bounding_box()["width"]
    assert drawn >= 0.9 * pane and drawn <= pane + 1, (drawn, pane)
    x, y, width, height = canvas.tile(0)
    assert height / canvas.ratio >= 16, f"a 1x{STRIP_LENGTH} strip is only {height} pixels tall"
    assert width / height == pytest.approx(STRIP_LENGTH, rel=0.1), "the strip's aspect ratio changed"
    row = [canvas.colour(column, y + height // 2) for column in range(x, x + width)]
    runs = [len(list(group)) for _, group in itertools.groupby(row)]
    assert len(runs) <= STRIP_LENGTH and min(runs[1:-1]) >= 0.5 * width / STRIP_LENGTH, "pixels are smoothed, not blocks"

    page.set_viewport_size({"width": 800, "height": 800})
    page.wait_for_function(f"document.querySelector('canvas.fm-grid').getBoundingClientRect().width < {drawn * 0.8}")
    narrower = page.locator("canvas.fm-grid").first.bounding_box()["width"]
    assert narrower >= 0.9 * page.locator(".fm-pane").first.bounding_box()["width"]

    page.get_by_label("Layer", exact=True).select_option("dense")
    page.locator("canvas.fm-grid[data-filters='6']").wait_for()
    page.mouse.move(0, 0)
    canvas = Canvas(page, "canvas.fm-grid")
    for f in range(6):
        _, _, width, height = canvas.tile(f)
        assert min(width, height) / canvas.ratio >= 16 and width == height

    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run=levels&layer=strip&filter=0")
    big = page.locator(".fm-detail .fm-big canvas")
    big.wait_for()
    assert big.bounding_box()["height"] >= 16


# Task 3: dark mode follows TensorBoard's toggle ----------------------------------------------------


def panel_background(frame) -> str:
    return frame.evaluate("getComputedStyle(document.body).backgroundColor")


def test_dark_mode_follows_tensorboard(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(f"{server}/#feature_maps")
        page.frame_locator("iframe").first.locator("canvas.fm-grid[data-step]").wait_for()
        frame = next(frame for frame in page.frames if "plugin_entry.html" in frame.url)
        assert page.evaluate("document.body.classList.contains('dark-mode')")  # TensorBoard follows the system
        dark = panel_background(frame)
        assert dark != "rgb(255, 255, 255)"
        page.evaluate("document.body.classList.remove('dark-mode')")  # as TensorBoard's "Light" does
        frame.wait_for_function("getComputedStyle(document.body).backgroundColor === 'rgb(255, 255, 255)'")
        page.evaluate("document.body.classList.add('dark-mode')")
        frame.wait_for_function(f"getComputedStyle(document.body).backgroundColor === '{dark}'")

        page.get_by_label("Menu for changing light or dark theme").click()  # TensorBoard's own toggle
        page.get_by_role("menuitem", name="Light").click()
        frame.wait_for_function("getComputedStyle(document.body).backgroundColor === 'rgb(255, 255, 255)'")
        page.get_by_label("Menu for changing light or dark theme").click()
        page.get_by_role("menuitem", name="Dark").click()
        frame.wait_for_function(f"getComputedStyle(document.body).backgroundColor === '{dark}'")

        page.goto(f"{server}/data/plugin_entry.html?name=feature_maps")  # no TensorBoard around it: the system's
        page.locator("canvas.fm-grid[data-step]").wait_for()
        assert panel_background(page.main_frame) == dark
    finally:
        page.close()


# Task 4: the toolbar stays in view ------------------------------------------------------------------


def test_toolbar_stays_in_view_while_scrolling(page, server):
    height = 420
    page.set_viewport_size({"width": 1000, "height": height})
    open_panel(page, server, "run=levels&layer=many")
    page.wait_for_function("document.querySelector('canvas.fm-heat')?.dataset.steps")
    summary = page.locator(".fm-summary").bounding_box()["y"]
    page.mouse.move(500, 400)
    page.mouse.wheel(0, 2000)
    page.wait_for_function("scrollY > 150")
    scrolled = page.evaluate("scrollY")
    assert page.locator(".fm-summary").bounding_box()["y"] == pytest.approx(summary - scrolled, abs=1), "the page did not scroll"
    for control in (page.get_by_label("Layer", exact=True), page.locator(".fm-slider"), page.get_by_role("button", name="First step")):
        box = control.bounding_box()
        assert 0 <= box["y"] and box["y"] + box["height"] <= height, box
        hit = page.evaluate("([x, y]) => document.elementFromPoint(x, y)?.closest('.fm-toolbar, .fm-stepbar') != null", [box["x"] + 3, box["y"] + 3])
        assert hit, "something is drawn over the toolbar"
    page.get_by_role("button", name="First step").click()
    wait_grid(page, 0)
    expect(page.locator(".fm-step-label")).to_have_text("epoch 0")
    assert page.evaluate("scrollY") > 150


# Task 5: the heat strip's colour scale --------------------------------------------------------------


@pytest.mark.parametrize("cmap", ["gray", "rdbu"])
def test_heat_strip_has_a_colour_scale(page, server, cmap):
    activity = fetch_json(f"{server}/data/plugin/feature_maps/activity?run=levels&layer=conv")
    means = np.array(activity["mean"], np.float64)  # [steps, filters]
    lo, hi = means.min(), means.max()
    open_panel(page, server, f"run=levels&layer=conv&cmap={cmap}")
    page.wait_for_function("document.querySelector('canvas.fm-heat')?.dataset.steps")
    scale = page.locator(".fm-heat-scale")
    expect(scale).to_be_visible()
    low, high = number(scale.locator(".fm-scale-low").inner_text()), number(scale.locator(".fm-scale-high").inner_text())
    magnitude = max(abs(lo), abs(hi))
    assert (low, high) == (
        pytest.approx(-magnitude if cmap == "rdbu" else lo, rel=0.01),
        pytest.approx(magnitude if cmap == "rdbu" else hi, rel=0.01),
    )
    if cmap == "rdbu":
        assert number(scale.locator(".fm-scale-mid").inner_text()) == 0

    page.mouse.move(0, 0)
    heat, bar = Canvas(page, "canvas.fm-heat"), Canvas(page, ".fm-heat-scale canvas")
    steps, filters = means.shape
    rows = heat.height / filters

    def cell(step, filter_):
        return heat.colour((step + 0.5) * heat.width / steps, (filter_ + 0.5) * rows)

    table = DIVERGING if cmap == "rdbu" else GRAY
    for value, (step, filter_) in ((lo, np.unravel_index(means.argmin(), means.shape)), (hi, np.unravel_index(means.argmax(), means.shape))):
        t = 0.5 + value / (2 * magnitude) if cmap == "rdbu" else (value - lo) / (hi - lo)
        assert_colour(cell(step, filter_), table[js_round(t * 255)], f"strip cell of {value}")
        assert_colour(bar.colour(min(bar.width - 1, t * bar.width), bar.height / 2), cell(step, filter_), f"scale at {value}", tolerance=6)


# Task 6: the data server's errors ----------------------------------------------------------------------

ERRORS = [
    {"run": "<img src=x onerror=window.pwned=1>", "tag": "activations/<b>bold</b>", "error": "BadJson: <script>alert(1)</script>"},
    {"run": "gone", "tag": None, "error": "run could not be read"},
]


def test_unreadable_runs_are_listed_in_a_notice(page, server):
    answer = {"errors": ERRORS}

    def runs(route):
        response = route.fetch()
        body = response.json()
        if answer["errors"] is not None:
            body["errors"] = answer["errors"]
        route.fulfill(response=response, json=body)

    page.route(re.compile(r"/runs$"), runs)
    open_panel(page, server, "run=levels&layer=conv")
    notice = page.locator(".fm-notice")
    expect(notice).to_be_visible()
    items = notice.locator("li").all_inner_texts()
    assert items == [f"{ERRORS[0]['run']} · {ERRORS[0]['tag']}: {ERRORS[0]['error']}", f"{ERRORS[1]['run']}: {ERRORS[1]['error']}"]
    assert page.evaluate("window.pwned") is None and page.locator(".fm-notice img, .fm-notice b, .fm-notice script").count() == 0
    expect(page.locator(".fm-summary")).to_contain_text("conv · Conv2D")

    notice.get_by_role("button", name="Dismiss").click()
    expect(notice).to_be_hidden()
    page.wait_for_timeout(3500)  # a poll later, the same errors stay dismissed
    expect(notice).to_be_hidden()
    answer["errors"] = ERRORS[1:] + [{"run": "levels", "tag": "activations/conv", "error": "new"}]
    expect(notice).to_be_visible(timeout=WAIT_MS)
    assert notice.locator("li").count() == 2
    answer["errors"] = None  # the field absent: nothing to show, everything else still works
    expect(notice).to_be_hidden(timeout=WAIT_MS)
    page.get_by_role("button", name="First step").click()
    wait_grid(page, 0)


# Task 7: the step unit everywhere ------------------------------------------------------------------------


def test_step_unit_is_shown_wherever_a_step_is(page, server):
    open_panel(page, server, "run=batches&layer=conv&filter=0")
    expect(page.locator(".fm-step-label")).to_have_text("batch 20")
    expect(page.locator(".fm-detail-sub")).to_contain_text("conv · batch 20 · ")
    page.wait_for_function("document.querySelectorAll('.fm-detail .fm-strip')[0]?.children.length === 3")
    film = page.locator(".fm-detail .fm-strip").first.locator("button")
    assert film.all_inner_texts() == [f"batch {step}" for step in BATCH_STEPS]
    page.wait_for_function("document.querySelector('.fm-detail .fm-chart')")
    ticks = page.locator(".fm-detail .fm-chart text.fm-chart-tick").all_text_contents()
    assert "batch 0" in ticks and "batch 20" in ticks
    expect(page.locator(".fm-detail")).to_contain_text("over batches")
    axis = page.locator(".fm-heat-axis span").all_inner_texts()
    assert axis[0] == "batch 0" and axis[-1] == "batch 20" and "batches" in axis[1]
    heat = page.locator("canvas.fm-heat")
    box = heat.bounding_box()
    heat.hover(position={"x": box["width"] * 1.5 / 3, "y": 3})
    expect(page.locator(".fm-heat-wrap .fm-tip")).to_contain_text("batch 10")
    assert "batch 20" in page.locator("canvas.fm-grid").first.get_attribute("aria-label")

    page.keyboard.press("Escape")
    page.get_by_label("Compare", exact=True).select_option("steps")
    wait_grid(page, 20, pane=1)
    assert page.get_by_label("Step to compare with").locator("option").all_inner_texts() == [f"batch {step}" for step in BATCH_STEPS]
    expect(page.locator(".fm-pane-caption").nth(1)).to_have_text("batch 20 (slider)")

    page.get_by_label("Compare", exact=True).select_option("runs")
    page.get_by_label("Run to compare with").select_option("levels")
    wait_grid(page, STEPS[-1], pane=1)
    expect(page.locator(".fm-pane-caption").nth(1)).to_contain_text("epoch 2 (nearest to batch 20)")
    page.get_by_label("Run", exact=True).select_option("levels")
    expect(page.locator(".fm-heat-axis")).to_contain_text("filters 0–2 ↓, epochs →")
    expect(page.locator(".fm-step-label")).to_have_text("epoch 2")


# Stats fields by name ---------------------------------------------------------------------------------


def with_field_first(route) -> None:
    """The stats / filter_stats answer with a field "p99" inserted before the others, in `fields` and every row."""
    response = route.fetch()
    body = response.json()
    body["fields"] = ["p99", *body["fields"]]
    body["values"] = [[[1000.0, *row] for row in rows] for rows in body["values"]]
    route.fulfill(response=response, json=body)


def test_stats_fields_are_read_by_name(page, server):
    """A field inserted first changes nothing: hover min / max / mean, tile colours, legend, detail facts, ranking, chart."""
    last = STEPS[-1]
    api = f"{server}/data/plugin/feature_maps"
    truth = fetch_json(f"{api}/stats?run=levels&layer=conv&step={last}")
    rows = [[dict(zip(truth["fields"], row)) for row in filters] for filters in truth["values"]]  # [P][F] by name
    values = decoded(conv_maps(last), "per_filter")  # [P, 4, 4, 3]
    page.route(re.compile(r"/(filter_)?stats\?"), with_field_first)

    open_panel(page, server, "run=levels&layer=conv&probe=0")
    page.mouse.move(0, 0)
    canvas = Canvas(page, "canvas.fm-grid")
    for f in range(3):
        lo, hi = rows[0][f]["min"], rows[0][f]["max"]
        for row, col in ((0, 0), (1, 2), (3, 3)):
            expected = expected_colour(values[0, row, col, f], GRAY, lo, hi, False)
            assert_colour(canvas.colour(*canvas.tile_pixel(f, row, col, 4, 4)), expected, f"filter {f} ({row}, {col}), per filter")
        canvas.hover(page, *canvas.tile_pixel(f, 1, 2, 4, 4))
        tip = page.locator(".fm-pane .fm-tip").first
        expect(tip).to_contain_text(f"filter {f} ")
        for name in ("min", "max", "mean"):
            shown = re.search(rf"\b{name} (\S+)", tip.inner_text())
            assert shown and number(shown.group(1)) == pytest.approx(rows[0][f][name], rel=0.01, abs=1e-6), (name, tip.inner_text())
        assert tip_value(page) == pytest.approx(values[0, 1, 2, f], abs=(hi - lo) / 255 + 1e-6)
    expect(page.locator(".fm-summary")).not_to_contain_text("NaN")

    # One scale for the layer, from every probe's min / max; RdBu centred on zero.
    reopen(page, server, "run=levels&layer=conv&norm=layer&cmap=rdbu&probe=1")
    page.mouse.move(0, 0)
    lo, hi = min(r["min"] for p in rows for r in p), max(r["max"] for p in rows for r in p)
    legend = page.locator(".fm-legend")
    magnitude = max(abs(lo), abs(hi))
    assert number(legend.locator(".fm-scale-low").inner_text()) == pytest.approx(-magnitude, rel=0.01)
    assert number(legend.locator(".fm-scale-high").inner_text()) == pytest.approx(magnitude, rel=0.01)
    canvas = Canvas(page, "canvas.fm-grid")
    for f in range(3):
        expected = expected_colour(values[1, 3, 3, f], DIVERGING, lo, hi, True)
        assert_colour(canvas.colour(*canvas.tile_pixel(f, 3, 3, 4, 4)), expected, f"probe 1 filter {f}, per layer, RdBu")

    # The detail view: the facts, the probes ranked by mean, the chart of the mean over steps (filter_stats).
    reopen(page, server, "run=levels&layer=conv&filter=0")
    detail = page.locator(".fm-detail")
    detail.locator(".fm-facts").wait_for()
    facts = dict(zip(detail.locator(".fm-facts dt").all_inner_texts(), detail.locator(".fm-facts dd").all_inner_texts()))
    assert set(facts) == {"min", "max", "mean", "std"}
    for name, text_ in facts.items():
        assert number(text_) == pytest.approx(rows[0][0][name], rel=0.01, abs=1e-6), name
    page.wait_for_function("document.querySelectorAll('.fm-ranking li').length === 2")
    ranked = [number(text_) for text_ in detail.locator(".fm-rank-value").all_inner_texts()]
    assert ranked == pytest.approx(sorted((p[0]["mean"] for p in rows), reverse=True), rel=0.01)
    history = fetch_json(f"{api}/filter_stats?run=levels&layer=conv&filter=0")
    means = np.array([[dict(zip(history["fields"], row))["mean"] for row in probes] for probes in history["values"]])  # [S, P]
    lines = np.concatenate([means.mean(axis=1), means[:, 0]])
    page.wait_for_function("document.querySelector('.fm-detail .fm-chart')")
    ticks = detail.locator(".fm-chart text.fm-chart-tick").all_text_contents()
    assert (number(ticks[0]), number(ticks[1])) == (pytest.approx(lines.max(), rel=0.01), pytest.approx(lines.min(), rel=0.01))
