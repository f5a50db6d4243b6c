"""A run reduced by ``max_step_bytes``: the listing carries each series' ``reduced`` and the panel says so, in a real browser."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers.browser import needs_chromium
from helpers.tensorboard import fetch_json, serving
from playwright.sync_api import expect

from tb_featuremaps import FeatureMapsWriter
from tb_featuremaps.format import metadata
from tb_featuremaps.writer import LayerDescription

pytestmark = needs_chromium()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``conv`` (48 px maps) and ``deep`` (with a pool), written under a budget no rung meets: the whole ladder is taken."""
    logdir = tmp_path_factory.mktemp("budget")
    rng = np.random.default_rng(0)
    field = metadata.ReceptiveField((40, 40), (4, 4), (-4, -4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pool = rng.random((16, 48, 48, 1), dtype=np.float32)
        probes = rng.random((2, 48, 48, 1), dtype=np.float32)
        with FeatureMapsWriter(logdir, probes, run_name="budget", pool=pool, max_step_bytes=1000) as writer:
            for step in range(2):
                maps = {"conv": rng.random((2, 48, 48, 4), dtype=np.float32), "deep": rng.random((2, 6, 6, 4), dtype=np.float32)}
                pooled = {"deep": rng.random((16, 6, 6, 4), dtype=np.float32)}
                assert writer.write(step, maps, layers={"deep": LayerDescription("Conv2D", receptive_field=field)}, pool_activations=pooled)
    with serving(logdir, ["--load_fast=false"], runs=1) as base:
        yield base


def test_the_listing_and_the_panel_say_what_was_reduced(page, server):
    layers = {layer["layer"]: layer for layer in fetch_json(f"{server}/data/plugin/feature_maps/runs")["runs"][0]["layers"]}
    assert layers["conv"]["reduced"] == {"max_tile_size": 8} and "reduced" not in layers["deep"]  # deep's 6x6 maps fit
    assert layers["deep"]["strongest"]["reduced"] == {"max_patch_size": 12, "top_k": 4}

    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run=budget&layer=conv")
    expect(page.locator(".fm-summary").first).to_contain_text("reduced to fit max_step_bytes: tiles ≤ 8 px")
    page.goto(f"{server}/data/plugin_entry.html?name=feature_maps#run=budget&layer=deep&view=strongest")
    summary = page.locator(".fm-looks-view:first-child .fm-view-summary")
    expect(summary).to_contain_text("reduced to fit max_step_bytes: patches ≤ 12 px, 4 strongest kept")
