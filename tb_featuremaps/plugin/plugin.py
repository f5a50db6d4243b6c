"""``FeatureMapsPlugin``: the HTTP routes of the Feature Maps tab (see docs/http-api.md)."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
from tensorboard import plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from ..format import metadata
from . import params
from .catalog import Catalog
from .convergence import DEFAULT_THRESHOLD, ConvergenceAnswers
from .series import ALL_STEPS, SeriesReader
from .static import DEFAULT_DIRECTORY, StaticFiles

IMAGE_EXPIRES = 24 * 3600
"""Seconds a browser may cache a grid or probe PNG: the value at a logged step never changes."""

_JSON = "application/json"

GRID_LENGTHS_HEADER = "X-Grid-Lengths"
"""The ``grids`` answer's header: the byte length of each PNG in its body, in the order of ``steps``."""

_BLOB_READERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="feature_maps_blobs")
"""Reads a ``grids`` answer's blobs side by side: with the Rust data server each read waits about 40 ms
(its sockets lack TCP_NODELAY; README), and reads in flight together wait once."""
_MEAN = metadata.STATS_FIELDS.index("mean")


class FeatureMapsPlugin(base_plugin.TBPlugin):
    """Serves feature-map grids, their statistics and the panel's files.

    Reads only through ``context.data_provider``. Steps kept per series follow
    ``--samples_per_plugin feature_maps=N`` (the loader defaults it to 0, every step;
    a hint of 0 reads every stored step here too).
    """

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext, static_directory: Path = DEFAULT_DIRECTORY):
        hint = (context.sampling_hints or {}).get(self.plugin_name)
        self._reader = SeriesReader(context.data_provider, hint if hint else ALL_STEPS)
        self._catalog = Catalog(self._reader)
        self._convergence = ConvergenceAnswers(self._reader)
        self._static = StaticFiles(static_directory)
        self._static_prefix = f"/data/plugin/{self.plugin_name}/static/"

    def get_plugin_apps(self) -> dict:
        return {
            "/index.js": self._serve_index,
            "/static/*": self._serve_static,
            "/runs": self._serve_runs,
            "/steps": self._serve_steps,
            "/grid": self._serve_grid,
            "/grids": self._serve_grids,
            "/stats": self._serve_stats,
            "/filter_stats": self._serve_filter_stats,
            "/activity": self._serve_activity,
            "/probe": self._serve_probe,
            "/topk": self._serve_topk,
            "/change": self._serve_change,
            "/pool": self._serve_pool,
            "/convergence": self._serve_convergence,
            "/similarity": self._serve_similarity,
            "/selectivity": self._serve_selectivity,
            "/filter_selectivity": self._serve_filter_selectivity,
        }

    def is_active(self) -> bool:
        return False  # TensorBoard lists the plugin when its data exists (data_plugin_names)

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        # The host's reload button does nothing for an iframe; the panel polls itself.
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="Feature Maps", disable_reload=True)

    # Files -------------------------------------------------------------------

    def _file(self, request: wrappers.Request, name: str) -> wrappers.Response:
        found = self._static.read(name)
        if found is None:
            raise params.not_found("file", name)
        content, content_type = found
        return http_util.Respond(request, content, content_type)

    @wrappers.Request.application
    def _serve_index(self, request: wrappers.Request) -> wrappers.Response:
        return self._file(request, "index.js")

    @wrappers.Request.application
    def _serve_static(self, request: wrappers.Request) -> wrappers.Response:
        path = request.path
        name = path[len(self._static_prefix) :] if path.startswith(self._static_prefix) else ""
        return self._file(request, name)

    # Data ----------------------------------------------------------------

    @wrappers.Request.application
    def _serve_runs(self, request: wrappers.Request) -> wrappers.Response:
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        return http_util.Respond(request, self._catalog.runs(ctx, eid), _JSON)

    @wrappers.Request.application
    def _serve_steps(self, request: wrappers.Request) -> wrappers.Response:
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        run, layer, kind = params.name(request.args, "run"), params.name(request.args, "layer"), params.kind(request.args)
        timeline = self._reader.timeline(ctx, eid, run, metadata.tag_for(kind, layer))
        return http_util.Respond(request, {"steps": timeline.steps.tolist(), "wall_times": timeline.wall_times.tolist()}, _JSON)

    @wrappers.Request.application
    def _serve_grid(self, request: wrappers.Request) -> wrappers.Response:
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        args = request.args
        run, layer, kind = params.name(args, "run"), params.name(args, "layer"), params.kind(args)
        step, probe = params.integer(args, "step"), params.integer(args, "probe", 0)
        tag = metadata.tag_for(kind, layer)
        key = self._grid_key(ctx, eid, run, tag, step, probe)
        return http_util.Respond(request, self._reader.blob(ctx, run, tag, key), "image/png", expires=IMAGE_EXPIRES)

    @wrappers.Request.application
    def _serve_grids(self, request: wrappers.Request) -> wrappers.Response:
        """One probe's grid PNGs at several steps in one answer, their blobs read side by side (see docs/http-api.md)."""
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        args = request.args
        run, layer, kind = params.name(args, "run"), params.name(args, "layer"), params.kind(args)
        steps, probe = params.steps(args), params.integer(args, "probe", 0)
        tag = metadata.tag_for(kind, layer)
        keys = [self._grid_key(ctx, eid, run, tag, step, probe) for step in steps]
        blobs = list(_BLOB_READERS.map(lambda key: self._reader.blob(ctx, run, tag, key), keys))
        headers = [(GRID_LENGTHS_HEADER, ",".join(str(len(blob)) for blob in blobs))]
        return http_util.Respond(request, b"".join(blobs), "application/octet-stream", expires=IMAGE_EXPIRES, headers=headers)

    def _grid_key(self, ctx, eid: str, run: str, tag: str, step: int, probe: int) -> str:
        """The blob key of one probe's grid at ``step``; NotFoundError naming the step or probe that is not logged."""
        keys = self._reader.keys_at(ctx, eid, run, tag, step)
        if keys is None:
            raise params.not_found("step", step)
        pngs = metadata.pngs_of(keys)
        if probe >= len(pngs):
            raise params.not_found("probe", probe)
        return pngs[probe]

    @wrappers.Request.application
    def _serve_stats(self, request: wrappers.Request) -> wrappers.Response:
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        run, layer, step = params.name(request.args, "run"), params.name(request.args, "layer"), params.integer(request.args, "step")
        values = self._reader.stats_at(ctx, eid, run, layer, step)
        if values is None:
            raise params.not_found("step", step)
        return http_util.Respond(request, {"step": step, "fields": list(metadata.STATS_FIELDS), "values": values.tolist()}, _JSON)

    @wrappers.Request.application
    def _serve_filter_stats(self, request: wrappers.Request) -> wrappers.Response:
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        args = request.args
        run, layer, index = params.name(args, "run"), params.name(args, "layer"), params.integer(args, "filter")
        series = self._reader.stats(ctx, eid, run, layer)
        if index >= series.values.shape[2]:
            raise params.not_found("filter", index)
        return http_util.Respond(
            request, {"fields": list(metadata.STATS_FIELDS), "steps": list(series.steps), "values": series.values[:, :, index, :].tolist()}, _JSON
        )

    @wrappers.Request.application
    def _serve_activity(self, request: wrappers.Request) -> wrappers.Response:
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        series = self._reader.stats(ctx, eid, params.name(request.args, "run"), params.name(request.args, "layer"))
        values = series.values
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a filter with no finite value on any probe: NaN
            means = np.nanmean(values[..., _MEAN], axis=1)
        dead = metadata.dead_filters(values)
        return http_util.Respond(request, {"steps": list(series.steps), "mean": means.tolist(), "dead": dead.tolist()}, _JSON)

    @wrappers.Request.application
    def _serve_probe(self, request: wrappers.Request) -> wrappers.Response:
        return self._picture(request, metadata.PROBES_TAG, "probe")

    @wrappers.Request.application
    def _serve_pool(self, request: wrappers.Request) -> wrappers.Response:
        return self._picture(request, metadata.POOL_TAG, "pool input")

    def _picture(self, request: wrappers.Request, tag: str, what: str) -> wrappers.Response:
        """One picture of the ``probes`` or ``pool`` series (of its last step), by ``index``."""
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        run, index = params.name(request.args, "run"), params.integer(request.args, "index")
        timeline = self._reader.timeline(ctx, eid, run, tag)
        keys = timeline.last_keys()
        pngs = metadata.pngs_of(keys)
        if index >= len(pngs):
            raise params.not_found(what, index)
        return http_util.Respond(request, self._reader.blob(ctx, run, tag, pngs[index]), "image/png", expires=IMAGE_EXPIRES)

    @wrappers.Request.application
    def _serve_topk(self, request: wrappers.Request) -> wrappers.Response:
        """Each filter's strongest pool inputs at one step, with their labels (docs/http-api.md)."""
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        run, layer, step = params.name(request.args, "run"), params.name(request.args, "layer"), params.integer(request.args, "step")
        series = self._reader.series_at(ctx, eid, run, layer, step, metadata.KIND_TOPK)
        values = series.at(step)
        if values is None:
            raise params.not_found("step", step)
        names = self._pool_labels(ctx, eid, run)
        inputs = values[..., metadata.TOPK_FIELDS.index("input")]
        labels = [[_label(names, index) for index in ranks] for ranks in inputs.tolist()]
        answer = {"step": step, "fields": list(metadata.TOPK_FIELDS), "values": values.tolist(), "labels": labels, "truncated": series.truncated}
        return http_util.Respond(request, answer, _JSON)

    def _pool_labels(self, ctx, eid: str, run: str) -> list:
        """The labels of the run's pool inputs (its ``pool`` series' content), ``[]`` without one."""
        series = self._reader.blob_series(ctx, eid, run, metadata.POOL_TAG).get(run, {}).get(metadata.POOL_TAG)
        try:
            labels = metadata.parse_content(series.plugin_content).get("labels") if series is not None else None
        except metadata.FormatError:
            labels = None
        return labels if isinstance(labels, list) else []

    @wrappers.Request.application
    def _serve_change(self, request: wrappers.Request) -> wrappers.Response:
        """Each filter's change since the previous step, at every step, and the fraction still changing."""
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        run, layer = params.name(request.args, "run"), params.name(request.args, "layer")
        series = self._reader.stats(ctx, eid, run, layer, metadata.KIND_CHANGE)
        changing = [metadata.changing_filters(values) if values.shape[0] else float("nan") for values in series.values]
        answer = {
            "steps": list(series.steps),
            "fields": list(metadata.CHANGE_FIELDS),
            "values": series.values.tolist(),
            "changing": [value if np.isfinite(value) else None for value in changing],
            "threshold": metadata.CHANGING_THRESHOLD,
        }
        return http_util.Respond(request, answer, _JSON)

    # Convergence and selectivity (plugin/convergence.py) ----------------------------------------------------------

    @wrappers.Request.application
    def _serve_convergence(self, request: wrappers.Request) -> wrappers.Response:
        """Every layer's similarity to its latest step over steps, and the step from which it stays above ``threshold``."""
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        run, threshold = params.name(request.args, "run"), params.fraction(request.args, "threshold", DEFAULT_THRESHOLD)
        return http_util.Respond(request, self._convergence.layers(ctx, eid, run, threshold), _JSON)

    @wrappers.Request.application
    def _serve_similarity(self, request: wrappers.Request) -> wrappers.Response:
        """One layer's step x step similarity map."""
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        run, layer = params.name(request.args, "run"), params.name(request.args, "layer")
        return http_util.Respond(request, self._convergence.similarity(ctx, eid, run, layer), _JSON)

    @wrappers.Request.application
    def _serve_selectivity(self, request: wrappers.Request) -> wrappers.Response:
        """Each filter's class means, preferred class, selectivity index and top-k overlap at one step."""
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        args = request.args
        run, layer, step = params.name(args, "run"), params.name(args, "layer"), params.integer(args, "step")
        answer = self._convergence.selectivity(ctx, eid, run, layer, step, self._pool_labels(ctx, eid, run))
        return http_util.Respond(request, answer, _JSON)

    @wrappers.Request.application
    def _serve_filter_selectivity(self, request: wrappers.Request) -> wrappers.Response:
        """One filter's class profile over training: its class means, preferred class, index and top-k overlap per step."""
        ctx, eid = plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)
        args = request.args
        run, layer, index = params.name(args, "run"), params.name(args, "layer"), params.integer(args, "filter")
        answer = self._convergence.filter_selectivity(ctx, eid, run, layer, index, self._pool_labels(ctx, eid, run))
        return http_util.Respond(request, answer, _JSON)


def _label(names: list, index: float) -> Optional[str]:
    """The label of pool input ``index`` (a ``topk`` tensor's float), or None when it is not one of the pool's."""
    if not np.isfinite(index) or index < 0 or index != int(index) or int(index) >= len(names):
        return None
    return str(names[int(index)])
