"""``max_step_bytes`` on real networks: every step within it, reduced in the documented order, read back from the event files."""

from __future__ import annotations

import glob
import os
import warnings

import keras
import numpy as np
import pytest
from tensorboard.backend.event_processing import event_file_loader

from benchmarks.budget import step_bytes
from tb_featuremaps import FeatureMapsLogger, FeatureMapsWriter, reader
from tb_featuremaps.format import metadata
from tb_featuremaps.writer import LayerDescription, budget

ORDER = (
    ("write_images", False),
    ("max_patch_size", 24),
    ("max_patch_size", 12),
    ("top_k", 4),
    ("max_tile_size", 32),
    ("max_tile_size", 16),
    ("max_tile_size", 8),
)
"""The order of degradation as docs/format.md ("Step budget") states it, written out here so that a changed ladder fails."""

SIDE = 64


def has_images_copies(run_dir: str) -> bool:
    for path in glob.glob(os.path.join(run_dir, "events.out.tfevents.*")):
        for event in event_file_loader.EventFileLoader(path).Load():
            if any(value.metadata.plugin_data.plugin_name == "images" for value in event.summary.value):
                return True
    return False


def rungs_taken(run: reader.RunLog, run_dir: str) -> list:
    """For each rung of :data:`ORDER`: True where the log shows it taken, False where not, None where it changes nothing."""
    grids = [layer.info for layer in run.layers.values()]
    sheets = [best.info for best in run.strongest.values()]
    taken = []
    for field, value in ORDER:
        if field == "write_images":
            taken.append(not has_images_copies(run_dir))
            continue
        infos = grids if field == "max_tile_size" else sheets
        sides = [_side(info, field) for info in infos]
        if not any(side > value for side in sides):
            taken.append(None)
            continue
        taken.append(any(info.reduced.get(field, float("inf")) <= value for info in infos))
    return taken


def _side(info: metadata.LayerInfo, field: str) -> int:
    """What a rung of ``field`` could lower in a series, as its content says."""
    if field == "max_patch_size":
        return max(info.extra.patch_size)
    if field == "top_k":
        return info.tiles_per_filter + 1 if "top_k" in info.reduced else info.tiles_per_filter  # reduced: there were more
    return max(info.output_shape[1:3])


def check_order(run: reader.RunLog, run_dir: str) -> None:
    """No rung is taken while an earlier one that would have reduced something was not."""
    taken = [flag for flag in rungs_taken(run, run_dir) if flag is not None]
    assert taken == sorted(taken, reverse=True), f"rungs taken out of order: {list(zip(ORDER, rungs_taken(run, run_dir)))}"


@pytest.fixture(scope="module", params=["ResNet50", "MobileNetV2"])
def network(request):
    return request.param, getattr(keras.applications, request.param)(weights=None, input_shape=(SIDE, SIDE, 3))


def _smooth_images(count: int, seed: int) -> np.ndarray:
    """Pictures with some structure (blurred noise), as a pool or probes of real images would have."""
    coarse = np.random.default_rng(seed).random((count, SIDE // 8, SIDE // 8, 3), dtype=np.float32)
    return np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)


@pytest.mark.parametrize("max_step_bytes", [None, 2 * 2**20])
def test_every_step_of_a_real_network_stays_within_the_budget(network, tmp_path, max_step_bytes):
    name, model = network
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger = FeatureMapsLogger(model, tmp_path, _smooth_images(4, 0), pool=_smooth_images(24, 1), max_step_bytes=max_step_bytes)
        kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")][:3]
        for step in range(3):
            assert logger.log(step)
            for kernel in kernels:  # a training step's change
                kernel.assign(kernel * 1.05)
        logger.close()
    run_dir = logger.writer.run_dir
    run = reader.load(os.path.dirname(run_dir))[os.path.basename(run_dir)]
    sizes = step_bytes(run_dir)
    assert sorted(sizes) == [0, 1, 2]
    messages = [str(w.message) for w in caught if "max_step_bytes" in str(w.message)]
    if max_step_bytes is None:
        assert max(sizes.values()) > 2 * 2**20 and not messages  # what the budget below has to cut
        return
    assert max(sizes.values()) <= max_step_bytes, sizes
    assert len(messages) == 1 and "reduced in this order" in messages[0] and "max_step_bytes=" in messages[0], messages
    reduced = {path: layer.info.reduced for path, layer in run.layers.items() if layer.info.reduced}
    reduced.update({f"strongest/{path}": best.info.reduced for path, best in run.strongest.items() if best.info.reduced})
    assert reduced, f"{name}: nothing says it was reduced"
    for field, value in {field: value for entry in reduced.values() for field, value in entry.items()}.items():
        assert any(f"{field}={value}" in message or f"{value} px" in message for message in messages), (field, value, messages)
    for layer in run.layers.values():  # every step decodes, at the reduced size the content says
        for index in range(len(layer.steps)):
            values = layer.values(index, 0)
            assert values.shape[1:] == (layer.info.layout.tile_height, layer.info.layout.tile_width)
            assert layer.info.layout.tile_height <= layer.info.reduced.get("max_tile_size", 64)
    for best in run.strongest.values():
        assert best.patches(len(best.steps) - 1).shape[0] == best.info.filters_shown
    check_order(run, run_dir)


def _synthetic(tmp_path, max_step_bytes, write_images="first") -> tuple[reader.RunLog, str]:
    """Two layers of noise, one with a pool: the Images copies are a small share of a step."""
    rng = np.random.default_rng(0)
    pool = rng.random((16, 48, 48, 1), dtype=np.float32)
    field = metadata.ReceptiveField((40, 40), (4, 4), (-4, -4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probes = rng.random((4, 48, 48, 1), dtype=np.float32)
        with FeatureMapsWriter(tmp_path, probes, pool=pool, max_step_bytes=max_step_bytes, write_images=write_images) as writer:
            for step in range(2):
                maps = {"conv": rng.random((4, 48, 48, 8), dtype=np.float32), "deep": rng.random((4, 6, 6, 8), dtype=np.float32)}
                layers = {"deep": LayerDescription("Conv2D", receptive_field=field)}
                assert writer.write(step, maps, layers=layers, pool_activations={"deep": rng.random((16, 6, 6, 8), dtype=np.float32)})
    return reader.load(str(tmp_path))[metadata.DEFAULT_RUN_NAME], writer.run_dir


def _budget_for_the_first_rung(tmp_path) -> int:
    """A budget that dropping the Images copies alone meets (at the first step, which decides)."""
    with_copies, without = (step_bytes(_synthetic(tmp_path / str(images), None, images)[1])[0] for images in ("first", False))
    return int((with_copies + without) / 2 / budget.BUDGET_SHARE)


def test_the_first_rung_that_suffices_is_the_only_one_taken(tmp_path):
    run, run_dir = _synthetic(tmp_path / "log", _budget_for_the_first_rung(tmp_path))
    assert rungs_taken(run, run_dir) == [True, False, False, False, False, False, False]
    check_order(run, run_dir)


def test_a_ladder_out_of_order_is_caught(tmp_path, monkeypatch):
    """Breaks the order on purpose (the tiles first, the Images copies last): the order check must fail."""
    monkeypatch.setattr(budget, "LADDER", tuple(reversed(budget.LADDER)))
    run, run_dir = _synthetic(tmp_path / "log", _budget_for_the_first_rung(tmp_path))
    with pytest.raises(AssertionError, match="out of order"):
        check_order(run, run_dir)
