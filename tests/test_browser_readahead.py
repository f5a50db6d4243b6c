"""The panel asks before the user does, under TensorBoard's default loader (``--load_fast=true``).

A layer's latest grid is asked for without waiting for its steps (the runs listing carries its last step and wall
time), and once a layer is painted the layers beside it and the next probe are read ahead, at most two requests at a
time, so that opening one paints from the cache. Requests are watched through Playwright's network events. Uses
conftest's browser fixtures (skipped without Debian's chromium).
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest
from helpers.browser import needs_chromium, wait_grid
from helpers.logs import write_log
from helpers.tensorboard import DEADLINE, fetch_json, serving

pytestmark = needs_chromium()

LAYERS = ["a", "b", "c", "d", "e"]
STEPS = range(6)
LAST = STEPS[-1]
READ_AHEAD = 2  # store.js READ_AHEAD
QUIET_S = 1.0  # no request for this long: the panel has read ahead all it will


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("readahead")
    write_log(logdir / "deep", layers=LAYERS, steps=STEPS, probes=3)
    with serving(logdir, ["--load_fast=true"], runs=1) as base:
        yield base


class Network:
    """The page's requests to the plugin's data routes, in order: ``("start" | "end", route, params, seconds)``."""

    def __init__(self, page):
        self.page = page
        self.events: list[tuple[str, str, dict, float]] = []
        page.on("request", lambda request: self._add("start", request.url))
        page.on("requestfinished", lambda request: self._add("end", request.url))
        page.on("requestfailed", lambda request: self._add("end", request.url))

    def _add(self, what: str, url: str) -> None:
        parsed = urlparse(url)
        if "/data/plugin/feature_maps/" in parsed.path and "/static/" not in parsed.path:
            params = {key: values[0] for key, values in parse_qs(parsed.query).items()}
            self.events.append((what, parsed.path.rsplit("/", 1)[-1], params, time.monotonic()))

    def wait_quiet(self) -> None:
        """Waits until no request has started or ended for :data:`QUIET_S` (from now) and none is in flight (Playwright delivers
        the page's events while it waits)."""
        called = time.monotonic()
        deadline = called + DEADLINE
        while True:
            starts = sum(what == "start" for what, *_ in self.events)
            if starts == len(self.events) - starts and time.monotonic() - max(called, self.events[-1][3] if self.events else 0) > QUIET_S:
                return
            assert time.monotonic() < deadline, f"the panel kept asking: {self.events[-5:]}"
            self.page.wait_for_timeout(100)

    def since(self, mark: int) -> list[tuple[str, dict]]:
        """``(route, params)`` of the requests started after event ``mark``, ``runs`` polls left out."""
        return [(route, params) for what, route, params, _ in self.events[mark:] if what == "start" and route != "runs"]


def most_in_flight(events, chosen) -> int:
    """The most requests with ``chosen(route, params)`` in flight at once."""
    flying = most = 0
    for what, route, params, _ in events:
        if chosen(route, params):
            flying += 1 if what == "start" else -1
            most = max(most, flying)
    return most


def asks(requests, route: str, **params) -> bool:
    """Whether one of ``requests`` is ``route`` with (at least) these parameters."""
    wanted = {key: str(value) for key, value in params.items()}
    return any(name == route and wanted.items() <= asked.items() for name, asked in requests)


def choose_layer(page, layer: str) -> None:
    page.get_by_label("Layer", exact=True).select_option(layer)
    page.wait_for_function("layer => document.querySelector('.fm-summary')?.textContent.startsWith(layer + ' · ')", arg=layer)
    wait_grid(page)


def test_the_listing_carries_the_latest_steps_wall_time(server):
    (run,) = fetch_json(f"{server}/data/plugin/feature_maps/runs")["runs"]
    for layer in run["layers"]:
        steps = fetch_json(f"{server}/data/plugin/feature_maps/steps?run=deep&layer={layer['layer']}")
        assert (layer["last_step"], layer["last_wall_time"]) == (steps["steps"][-1], steps["wall_times"][-1])


def test_a_new_layers_latest_grid_is_asked_for_beside_its_steps(page, server):
    network = Network(page)
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run=deep&layer=a")
    wait_grid(page, LAST)
    network.wait_quiet()
    mark = len(network.events)
    choose_layer(page, "d")  # not beside a: not read ahead
    order = [(what, route) for what, route, params, _ in network.events[mark:] if params.get("layer") == "d"]
    assert ("start", "grid") in order and ("end", "steps") in order, order
    assert order.index(("start", "grid")) < order.index(("end", "steps")), f"the grid waited for the steps answer: {order}"
    assert order.index(("start", "stats")) < order.index(("end", "steps")), order


def test_neighbours_are_read_ahead_two_requests_at_a_time_and_open_from_the_cache(page, server):
    network = Network(page)
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run=deep&layer=b")
    wait_grid(page, LAST)
    network.wait_quiet()
    asked = network.since(0)
    for layer in ("a", "c"):  # the layers beside b, at its step, as opening them would ask
        assert asks(asked, "steps", layer=layer), (layer, asked)
        assert asks(asked, "grid", layer=layer, step=LAST, probe=0), (layer, asked)
        assert asks(asked, "stats", layer=layer, step=LAST), (layer, asked)
        assert asks(asked, "activity", layer=layer) and asks(asked, "change", layer=layer), (layer, asked)
    assert asks(asked, "grid", layer="b", step=LAST, probe=1), asked  # the next probe
    assert not any(params.get("layer") in ("d", "e") for _, params in asked), asked

    def ahead(route: str, params: dict) -> bool:  # a request of another layer, or of another probe (not the probe pictures)
        return "layer" in params and (params["layer"] != "b" or params.get("probe", "0") != "0")

    most = most_in_flight(network.events, ahead)
    print(f"read-ahead requests: {sum(ahead(*request) for request in asked)}, at most {most} in flight at once")
    assert most <= READ_AHEAD, f"{most} read-ahead requests in flight at once: {network.events}"

    mark = len(network.events)
    choose_layer(page, "c")
    opened = [(route, params) for route, params in network.since(mark) if params.get("layer") == "c"]
    shown = str(LAST)

    def asked_again(route: str, params: dict) -> bool:  # what painting c asks for, unless it is cached
        at_shown = params.get("step") == shown or shown in params.get("steps", "").split(",")
        return route in ("steps", "activity", "change") or (route in ("grid", "grids", "stats") and at_shown)

    again = [(route, params) for route, params in opened if asked_again(route, params)]
    assert not again, f"opening a layer read ahead asked again for {again}"


def test_nothing_is_read_ahead_for_a_selection_left_at_once(page, server):
    network = Network(page)
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run=deep&layer=b&step=0")
    wait_grid(page, 0)
    network.wait_quiet()
    mark = len(network.events)
    page.locator(".fm-slider").focus()
    for _ in range(LAST):
        page.keyboard.press("ArrowRight")
    wait_grid(page, LAST)
    network.wait_quiet()
    ahead = {params["step"] for route, params in network.since(mark) if route == "grid" and params.get("layer") in ("a", "c")}
    assert ahead == {str(LAST)}, f"read ahead for steps passed on the way: {sorted(ahead)} {network.since(mark)}"
