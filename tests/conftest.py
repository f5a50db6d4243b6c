"""Shared fixtures: a small model trained with the real callback on real MNIST digits, and Chromium pages.

The helpers the tests share are in ``tests/helpers``; test modules import from there.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest
from helpers.browser import WAIT_MS, launch_chromium
from helpers.models import train_logdir


@pytest.fixture(scope="session")
def trained_logdir(tmp_path_factory) -> str:
    """A logdir with run ``feature_maps``: 13 steps (0..12) of conv1/pool1/conv2/pool2."""
    return train_logdir(tmp_path_factory.mktemp("logs"), epochs=12)


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium (headless), one per test module; browser test modules skip without it (``needs_chromium``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A 1280x800 page; fails the test on any uncaught script error."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(WAIT_MS)
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    yield page
    page.close()
    assert not errors, errors
