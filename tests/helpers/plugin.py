"""The plugin in an in-process TensorBoard WSGI app over real event files (the Python loader's data provider)."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from werkzeug.test import Client

from tb_featuremaps.format import metadata
from tb_featuremaps.plugin.loader import FeatureMapsLoader
from tb_featuremaps.plugin.plugin import FeatureMapsPlugin

BASE = "/data/plugin/feature_maps/"


def multiplexer_for(logdir, keep_every: Sequence[str] = (metadata.PLUGIN_NAME,)) -> plugin_event_multiplexer.EventMultiplexer:
    """TensorBoard's multiplexer over ``logdir``, loaded, keeping every value of the plugins ``keep_every`` (the rest sampled)."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance=dict.fromkeys(keep_every, 0))
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    return multiplexer


def tensorboard_steps(logdir, run: str, tag: str) -> list[int]:
    """The steps TensorBoard's multiplexer reads of ``tag`` in ``run``."""
    return [event.step for event in multiplexer_for(logdir).Tensors(run, tag)]


class _Loader(FeatureMapsLoader):
    """The real loader, with the panel's files taken from another directory."""

    def __init__(self, static_directory: Path | None = None):
        self._static_directory = static_directory

    def load(self, context):
        if self._static_directory is None:
            return super().load(context)
        return FeatureMapsPlugin(context, static_directory=self._static_directory)


def make_client(logdir, samples: dict | None = None, static_directory: Path | None = None, multiplexer=None) -> Client:
    """A werkzeug client of a TensorBoard app with this plugin, over the Python loader's data provider."""
    multiplexer = multiplexer or multiplexer_for(logdir)
    flags = argparse.Namespace(logdir=str(logdir), samples_per_plugin=dict(samples or {}), window_title="", path_prefix="")
    loader = _Loader(static_directory)
    loader.fix_flags(flags)
    app = application.TensorBoardWSGIApp(flags, [loader], data_provider.MultiplexerDataProvider(multiplexer, str(logdir)))
    return Client(app)


def get(client: Client, route: str, **query):
    return client.get(BASE + route, query_string=query)


def assert_refused(client: Client, route: str, query: dict, status: int) -> None:
    """The route answers ``status`` (400 or 404) with a short plain-text reason."""
    response = get(client, route, **query)
    assert response.status_code == status, response.data
    assert response.mimetype == "text/plain"
    assert 0 < len(response.data) < 300


def get_json(client: Client, route: str, **query):
    response = get(client, route, **query)
    assert response.status_code == 200, (route, query, response.data)
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    return json.loads(response.data)


def get_png(client: Client, route: str, **query) -> np.ndarray:
    response = get(client, route, **query)
    assert response.status_code == 200, (route, query, response.data)
    assert response.mimetype == "image/png"
    assert "max-age=86400" in response.headers["Cache-Control"]
    return np.asarray(Image.open(io.BytesIO(response.data)))


def finite(values) -> np.ndarray:
    """A JSON number array as float, with Respond's "NaN"/"Infinity" strings converted back."""
    return np.array(json.loads(json.dumps(values).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")), dtype=float)
