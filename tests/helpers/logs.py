"""Feature-map logs written without training.

Through the one pipeline, ``FeatureMapsWriter`` (:func:`log_writer`, :func:`write_step`,
:func:`write_log`, :func:`write_run`), unless a test needs what the writer never writes:
:func:`write_layer_step` and :func:`write_probes_by_hand` write series by hand
(``SummaryWriter``), for a step unit the writer refuses or a test of ``SummaryWriter``
itself; :func:`write_newer_format_run` writes a series of a format newer than this one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from tb_featuremaps import FeatureMapsWriter, render
from tb_featuremaps.format import metadata
from tb_featuremaps.writer import LayerDescription

LABELS = ["a", "b"]
"""The probe labels of :func:`write_run`'s logs."""


def log_writer(
    run_dir, labels: Sequence[str] = LABELS, probes=None, *, step_unit: str = "epoch", resume: bool = False, **options
) -> FeatureMapsWriter:
    """A ``FeatureMapsWriter`` logging exactly to ``run_dir`` (``log_dir/run_name``), with no Images copies.

    ``probes``: the probe inputs (default: blank), ``[P, 8, 8, 1]``, drawn as the run's
    probe pictures at its first step. ``resume=True`` appends to a run folder that
    already holds steps (in a new event file, as a second writer after the first closed).
    ``options``: more of the writer's arguments (``pool=``, ``top_k=``).
    """
    run_dir = Path(run_dir)
    probes = np.zeros((len(labels), 8, 8, 1), np.float32) if probes is None else probes
    writer = FeatureMapsWriter(
        str(run_dir.parent), probes, list(labels), run_name=run_dir.name, step_unit=step_unit, resume=resume, write_images=False, **options
    )
    writer.open()
    if os.path.abspath(writer.run_dir) != os.path.abspath(run_dir):
        writer.close()
        raise RuntimeError(f"the writer chose {writer.run_dir!r}, not {str(run_dir)!r} (it holds steps already: pass resume=True)")
    return writer


def write_step(writer: FeatureMapsWriter, step: int, maps: Mapping[str, np.ndarray], layer_class: str = "Conv2D") -> None:
    """Writes ``maps`` (layer name → ``[probes, h, w, filters]``) as ``step``; raises if the writer could not."""
    if not writer.write(step, maps, layers={name: LayerDescription(layer_class) for name in maps}):
        raise RuntimeError(f"{writer.run_dir}: step {step} was not written (see the warning)")


def write_log(
    run_dir, layers: Sequence[str] = ("conv",), steps: Sequence[int] = range(3), probes: int = 3, nan_probe: bool = False, resume: bool = False
) -> None:
    """A small run of random maps (4 filters, 6x6; filter 3 dead, filter 2 all NaN with ``nan_probe``) and random probe pictures."""
    rng = np.random.default_rng(len(steps))
    pictures = rng.integers(0, 256, (probes, 8, 8), dtype=np.uint8)
    with log_writer(run_dir, [f"p{i}" for i in range(probes)], pictures[..., None], resume=resume) as writer:
        for step in steps:
            maps = {}
            for layer in layers:
                maps[layer] = rng.normal(size=(probes, 6, 6, 4)).astype(np.float32)
                maps[layer][:, :, :, 3] = 0.0  # a dead filter
                if nan_probe:
                    maps[layer][:, :, :, 2] = np.nan  # a filter with no finite value
            write_step(writer, step, maps)


def step_maps(step: int, scale: float = 1.0) -> np.ndarray:
    """``[2, 6, 6, 4]``: normal noise seeded by ``step`` (times ``scale``), a layer of 4 filters for two probes."""
    return (scale * np.random.default_rng(step).normal(size=(2, 6, 6, 4))).astype(np.float32)


def write_run(run_dir, steps: Sequence[int], layers: Sequence[str] = ("conv",), scale: float = 1.0, step_unit: str = "epoch") -> None:
    """Steps of ``layers``, each :func:`step_maps` ``(step, scale)``, probes labelled :data:`LABELS`; flushed after each step."""
    with log_writer(run_dir, step_unit=step_unit) as writer:
        for step in steps:
            write_step(writer, step, {layer: step_maps(step, scale) for layer in layers})


POOL_SIZE = 12
POOL_LABELS = [f"digit{index % 10}" for index in range(POOL_SIZE)]
"""The pool labels of :func:`write_pool_run`'s logs."""
POOL_FIELD = metadata.ReceptiveField((3, 3), (1, 1), (-1, -1))
"""The receptive field of :func:`write_pool_run`'s ``conv``: a 3x3 ``same`` convolution of the 8x8 input."""


def pool_outputs(step: int, filters: int = 4) -> np.ndarray:
    """``[POOL_SIZE, 8, 8, filters]``: ``conv``'s output for the pool at ``step``: the first half of the filters the same
    at every step (they stop changing), the others new noise at each step."""
    outputs = np.random.default_rng(1000).normal(size=(POOL_SIZE, 8, 8, filters)).astype(np.float32)
    outputs[..., filters // 2 :] = np.random.default_rng(1001 + step).normal(size=(POOL_SIZE, 8, 8, filters - filters // 2))
    return outputs


def write_pool_run(run_dir, steps: Sequence[int], top_k: int = 3, filters: int = 4) -> None:
    """A run with a pool of :data:`POOL_SIZE` random 8x8 pictures (labels :data:`POOL_LABELS`): layer ``conv`` (``Conv2D``,
    its kernel, its top ``top_k`` pool inputs from :func:`pool_outputs`, so its ``strongest``, ``topk`` and ``change``) and
    ``dense`` (no kernel, no pool outputs: its ``change`` is NaN), probes labelled :data:`LABELS`."""
    rng = np.random.default_rng(7)
    pool = rng.random((POOL_SIZE, 8, 8, 1)).astype(np.float32)
    layers = {"conv": LayerDescription("Conv2D", receptive_field=POOL_FIELD), "dense": LayerDescription("Dense")}
    with log_writer(run_dir, pool=pool, pool_labels=POOL_LABELS, top_k=top_k, background=False) as writer:
        for step in steps:
            maps = {"conv": rng.normal(size=(2, 8, 8, filters)).astype(np.float32), "dense": rng.normal(size=(2, 5)).astype(np.float32)}
            kernels = {"conv": rng.normal(size=(3, 3, 1, filters)).astype(np.float32) * (1 + step)}
            if not writer.write(step, maps, kernels, layers, pool_activations={"conv": pool_outputs(step, filters)}):
                raise RuntimeError(f"{writer.run_dir}: step {step} was not written (see the warning)")


def move_event_file(written_dir, run_dir, name: Optional[str] = None) -> Path:
    """Moves the one event file in ``written_dir`` into ``run_dir`` (as ``name``, else under its own name): a second
    training's file in a run folder, as two processes writing one folder leave it (steps written twice)."""
    (written,) = Path(written_dir).iterdir()
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return written.rename(Path(run_dir) / (name or written.name))


# By hand -------------------------------------------------------------------------------------


def write_probes_by_hand(writer, step: int, pictures: np.ndarray, labels: list) -> None:
    """Writes uint8 ``pictures`` ``[probes, h, w]`` as the run's probe pictures with ``SummaryWriter`` ``writer``."""
    _, height, width = pictures.shape
    writer.write_probes(step, [render.encode_png(picture) for picture in pictures], width, height, labels, [height, width, 1])


def write_layer_step(
    writer, step: int, layer: str, index: int, maps: np.ndarray, labels: list, layer_class: str = "Conv2D", step_unit: str = "epoch"
):
    """Writes ``maps`` ``[probes, h, w, filters]`` as ``layer``'s grids and stats at ``step`` with ``SummaryWriter`` ``writer``
    (no Images copies, no Scalars): for logs ``FeatureMapsWriter`` would refuse to write, such as a hostile step unit."""
    drawn = render.draw(maps, max_filters=maps.shape[-1], max_tile_size=max(maps.shape[1:3]))
    _, height, width, filters = maps.shape
    info = metadata.LayerInfo(
        "activations",
        layer,
        layer_class,
        index,
        [None, height, width, filters],
        drawn.layout(),
        filters,
        filters,
        labels,
        step_unit,
        normalization=drawn.normalization,
    )
    writer.write_layer(step, info, render.to_pngs(drawn, info.layout), tensors={metadata.KIND_STATS: drawn.stats}, images_copy=False)


def write_newer_format_run(run_dir) -> None:
    """Run ``run_dir`` with one layer, ``new``, in the format version after this one (readers leave it out)."""
    from tb_featuremaps.writer.summary import SummaryWriter

    layout = metadata.GridLayout.for_tiles(1, 2, 2)
    newer = metadata.LayerInfo("activations", "new", "Conv2D", 0, [None, 2, 2, 1], layout, 1, 1, ["p"], "epoch", version=metadata.FORMAT_VERSION + 1)
    writer = SummaryWriter(str(run_dir))
    writer.write_layer(0, newer, [render.encode_png(np.zeros((2, 2), np.uint8))], images_copy=False)
    writer.close()


def write_responses_run(run_dir, steps: Sequence[int], responses: Mapping[str, np.ndarray], labels: Sequence[str], top_k: int = 3) -> None:
    """A run through ``FeatureMapsWriter`` with a pool of ``len(labels)`` random 4x4 pictures labelled ``labels``, whose
    layers (``responses``: layer → ``[S, N, F]``, in model order) respond to pool input ``n`` at step position ``s``
    exactly ``responses[layer][s, n]`` (their pool maps are that value everywhere, so it is each map's maximum): the
    writer stores them as ``responses/<layer>`` and finds each filter's ``top_k`` from them. One probe, blank maps."""
    rng = np.random.default_rng(11)
    pool = rng.random((len(labels), 4, 4, 1)).astype(np.float32)
    layers = {layer: LayerDescription("Conv2D") for layer in responses}
    with log_writer(run_dir, ["p"], np.zeros((1, 4, 4, 1), np.float32), pool=pool, pool_labels=list(labels), top_k=top_k) as writer:
        for position, step in enumerate(steps):
            maps = {layer: rng.normal(size=(1, 2, 2, values.shape[2])).astype(np.float32) for layer, values in responses.items()}
            pooled = {layer: np.repeat(np.repeat(values[position][:, None, None, :], 2, axis=1), 2, axis=2) for layer, values in responses.items()}
            if not writer.write(step, maps, layers=layers, pool_activations=pooled):
                raise RuntimeError(f"{writer.run_dir}: step {step} was not written (see the warning)")
