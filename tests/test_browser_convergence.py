"""The Convergence view and the grid's class-selectivity order, in a real browser over a real TensorBoard.

The log is written through ``FeatureMapsWriter`` with a labelled pool (crafted pool maps, so each
layer's responses are known); every number the panel shows is checked against the plugin's own routes
(which tests/test_plugin_convergence.py checks against the format's math). Uses conftest's browser
fixtures (skipped without Debian's chromium).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import numpy as np
import pytest
from helpers.browser import needs_chromium, wait_grid
from helpers.logs import write_responses_run
from helpers.tensorboard import fetch_json, serving

pytestmark = needs_chromium()

RUN = "run"
STEPS = [0, 1, 2, 3, 4, 5, 6, 7]
LABELS = [f"digit{index % 4}" for index in range(16)]
FILTERS = 6
LAYERS = ["conv1", "conv2", "conv3"]


def responses(seed: int, settle_at: int) -> np.ndarray:
    """[S, N, F]: noise that stops at step position ``settle_at``; filter f answers class f % 4 most, more so for higher f."""
    rng = np.random.default_rng(seed)
    final = rng.random((len(LABELS), FILTERS)) * 0.2
    for filter_ in range(FILTERS):
        final[[index for index, label in enumerate(LABELS) if label == f"digit{filter_ % 4}"], filter_] += filter_ * 0.7 + (seed % 2)
    return np.stack([final + rng.normal(size=final.shape) * (position < settle_at) for position in range(len(STEPS))]).astype(np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """TensorBoard (Python loader) over one run of 3 layers with responses and a labelled pool of 16 inputs."""
    logdir = tmp_path_factory.mktemp("convergence_panel")
    write_responses_run(logdir / RUN, STEPS, {layer: responses(index + 1, 2 + 2 * index) for index, layer in enumerate(LAYERS)}, LABELS)
    with serving(logdir, ["--load_fast", "false"], runs=1) as base:
        yield base


def route(server: str, name: str, **query):
    return fetch_json(f"{server}/data/plugin/feature_maps/{name}?{urllib.parse.urlencode(query)}")


def open_convergence(page, server: str, layer: str = "conv1") -> None:
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run={RUN}&layer={layer}")
    wait_grid(page)
    page.get_by_role("button", name="Convergence").click()
    page.wait_for_function("() => document.querySelector('.fm-convergence')?.dataset.paintedMs")


def test_the_chart_has_one_line_per_layer_in_model_order_and_says_where_each_settled(page, server):
    open_convergence(page, server)
    answer = route(server, "convergence", run=RUN)
    chart = page.locator("svg.fm-cka-chart")
    assert chart.get_attribute("data-layers") == str(len(LAYERS))
    assert page.locator("path.fm-cka-line").evaluate_all("lines => lines.map((line) => line.dataset.layer)") == LAYERS
    items = page.locator(".fm-cka-item")
    assert items.evaluate_all("items => items.map((item) => item.dataset.layer)") == LAYERS
    for position, entry in enumerate(answer["layers"]):
        text = items.nth(position).inner_text()
        assert (f"settled at epoch {entry['settled']}" if entry["settled"] is not None else "not settled") in text
    assert [entry["settled"] for entry in answer["layers"]] == [2, 4, 6]


def test_the_maps_value_under_the_pointer_is_the_routes(page, server):
    open_convergence(page, server, layer="conv2")
    canvas = page.locator("canvas.fm-similarity")
    canvas.wait_for()
    answer = route(server, "similarity", run=RUN, layer="conv2")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    count = len(answer["steps"])
    for row, col in [(0, 0), (1, 6), (7, 3), (5, 5)]:
        page.mouse.move(box["x"] + (col + 0.5) * box["width"] / count, box["y"] + (row + 0.5) * box["height"] / count)
        tip = page.locator(".fm-similarity-wrap .fm-tip")
        tip.wait_for()
        assert (tip.get_attribute("data-row"), tip.get_attribute("data-col")) == (str(answer["steps"][row]), str(answer["steps"][col]))
        assert float(tip.get_attribute("data-value")) == pytest.approx(answer["values"][row][col], rel=1e-12)
        assert f"epoch {answer['steps'][row]} × epoch {answer['steps'][col]}" in tip.inner_text()


def test_clicking_a_layer_in_the_legend_shows_its_map(page, server):
    open_convergence(page, server, layer="conv1")
    page.locator(".fm-cka-item[data-layer=conv3]").click()
    page.wait_for_function("() => document.querySelector('.fm-similarity-title')?.textContent.startsWith('conv3')")
    assert page.locator(".fm-cka-item[data-layer=conv3]").get_attribute("aria-pressed") == "true"


def test_sorting_by_selectivity_reorders_the_tiles_as_the_route_says(page, server):
    step = STEPS[-1]
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run={RUN}&layer=conv2&step={step}")
    wait_grid(page, step)
    grid = page.locator("canvas.fm-grid").first
    page.wait_for_function("() => document.querySelector('canvas.fm-grid').dataset.order")
    assert grid.get_attribute("data-order") == ",".join(map(str, range(FILTERS)))
    page.get_by_role("button", name="Class selectivity").click()
    answer = route(server, "selectivity", run=RUN, layer="conv2", step=step)
    index = [value if isinstance(value, float) else float("-inf") for value in answer["index"]]
    expected = sorted(range(FILTERS), key=lambda filter_: (-index[filter_], filter_))
    assert expected != list(range(FILTERS))
    page.wait_for_function("(order) => document.querySelector('canvas.fm-grid').dataset.order === order", arg=",".join(map(str, expected)))
    # the tile in the first position is the most selective filter: hovering it names it and its preferred class
    box = grid.bounding_box()
    page.mouse.move(box["x"] + 12, box["y"] + 12)
    tip = page.locator(".fm-pane .fm-tip").first
    tip.wait_for()
    assert tip.inner_text().startswith(f"filter {expected[0]}")
    assert f"prefers {answer['classes'][answer['preferred'][expected[0]]]}" in tip.inner_text()


def test_the_filter_detail_shows_its_class_profile(page, server):
    step = STEPS[-1]
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run={RUN}&layer=conv1&step={step}&filter=5")
    wait_grid(page, step)
    profile = route(server, "filter_selectivity", run=RUN, layer="conv1", filter=5)
    bars = page.locator(".fm-class-means li")
    bars.first.wait_for()
    assert bars.evaluate_all("items => items.map((item) => item.dataset.class)") == profile["classes"]
    preferred = profile["classes"][profile["preferred"][-1]]
    assert page.locator(".fm-class-means li[aria-current=true]").get_attribute("data-class") == preferred
    assert page.locator(".fm-preferred").count() == len(STEPS)
    assert page.locator(".fm-preferred").nth(len(STEPS) - 1).inner_text() == preferred
