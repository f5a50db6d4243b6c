"""The writer's strongest inputs and change series, read back from the event files with TensorBoard's own loader."""

from __future__ import annotations

import glob
import json
import warnings

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.util import tensor_util

from tb_featuremaps import FeatureMapsWriter, render
from tb_featuremaps.format import metadata
from tb_featuremaps.render import strongest
from tb_featuremaps.writer import LayerDescription

POOL = 20
FIELD = metadata.ReceptiveField((3, 3), (2, 2), (-1, -1))


def _events(run_dir) -> dict:
    """Tag → {step: (value, content)} of every value written (content: the tag's metadata, from its first value)."""
    found: dict = {}
    contents: dict = {}
    for path in sorted(glob.glob(f"{run_dir}/events.out.tfevents.*")):
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.content:
                    contents[value.tag] = json.loads(value.metadata.plugin_data.content)
                found.setdefault(value.tag, {})[event.step] = tensor_util.make_ndarray(value.tensor)
    return {tag: {step: (array, contents.get(tag)) for step, array in steps.items()} for tag, steps in found.items()}


def _pool_step(rng, step: int) -> np.ndarray:
    """Pool outputs ``[POOL, 6, 6, 4]`` that change less and less from step to step."""
    base = rng.normal(size=(POOL, 6, 6, 4)).astype(np.float32)
    return base * (1 + 0.5**step)


@pytest.fixture
def logged(tmp_path):
    rng = np.random.default_rng(0)
    pool_inputs = rng.uniform(-1, 1, (POOL, 12, 12, 1)).astype(np.float32)
    pool_outputs = [_pool_step(np.random.default_rng(step % 2), step) for step in range(3)]
    kernels = [rng.normal(size=(3, 3, 1, 4)).astype(np.float32) for _ in range(3)]
    writer = FeatureMapsWriter(tmp_path, np.zeros((2, 12, 12, 1), np.float32), ["a", "b"], pool=pool_inputs, top_k=5, write_images=False)
    description = LayerDescription("Conv2D", receptive_field=FIELD)
    for step in range(3):
        probes = rng.normal(size=(2, 6, 6, 4)).astype(np.float32)
        assert writer.write(step, {"conv": probes}, {"conv": kernels[step]}, {"conv": description}, {"conv": pool_outputs[step]})
    writer.close()
    return _events(writer.run_dir), pool_inputs, pool_outputs, kernels


def test_topk_is_the_brute_force_ranking(logged):
    events, _, pool_outputs, _ = logged
    for step, outputs in enumerate(pool_outputs):
        topk, content = events["topk/conv"][step][0], events["topk/conv"][0][1]
        topk = metadata.align_fields(topk, content["fields"], metadata.TOPK_FIELDS)
        column = {name: topk[..., i] for i, name in enumerate(metadata.TOPK_FIELDS)}
        flat = outputs.reshape(POOL, 36, 4)
        best = flat.max(axis=1)  # [N, F]
        where = flat.argmax(axis=1)
        for f in range(4):
            expected = np.argsort(-best[:, f], kind="stable")[:5]
            np.testing.assert_array_equal(column["input"][f], expected)
            np.testing.assert_allclose(column["value"][f], best[expected, f], rtol=1e-6)
            rows, cols = np.divmod(where[expected, f], 6)
            np.testing.assert_array_equal(column["row"][f], rows)
            np.testing.assert_array_equal(column["col"][f], cols)
            np.testing.assert_array_equal(column["top"][f], -1 + 2 * rows)
            np.testing.assert_array_equal(column["left"][f], -1 + 2 * cols)


def test_sheet_tiles_are_the_pool_crops_under_the_field(logged):
    events, pool_inputs, _, _ = logged
    sheet_value, content = events["strongest/conv"][2]
    info = metadata.LayerInfo.from_json(content)
    assert (info.layout.rows, info.layout.cols, info.tiles_per_filter) == (4, 5, 5)
    assert (info.layout.tile_height, info.layout.tile_width) == (3, 3)
    assert content["extra"]["receptive_field"] == FIELD.to_json()
    assert content["extra"]["patch"] == "receptive field" and content["extra"]["top_k"] == 5 and content["extra"]["pool_size"] == POOL
    sheet = render.decode_png(metadata.pngs_of(sheet_value)[0])
    topk = events["topk/conv"][2][0]
    pictures = strongest.PoolPictures.of(pool_inputs)
    assert content["extra"]["input_range"] == pytest.approx(list(pictures.input_range))
    padded = np.pad(pictures.levels, ((0, 0), (1, 1), (1, 1)), constant_values=pictures.padding)
    for f in range(4):
        for r in range(5):
            index, top, left = (int(topk[f, r, metadata.TOPK_FIELDS.index(name)]) for name in ("input", "top", "left"))
            y, x = info.layout.tile_origin(f * info.tiles_per_filter + r)
            np.testing.assert_array_equal(sheet[y : y + 3, x : x + 3], padded[index, top + 1 : top + 4, left + 1 : left + 4])


def test_change_is_the_relative_change_since_the_previous_step(logged):
    events, _, pool_outputs, kernels = logged
    first = events["change/conv"][0][0]
    assert first.shape == (4, len(metadata.CHANGE_FIELDS)) and np.isnan(first).all()
    for step in (1, 2):
        change = events["change/conv"][step][0]
        before, now = (pool_outputs[s].reshape(POOL, 36, 4).max(axis=1) for s in (step - 1, step))
        expected = np.linalg.norm(now - before, axis=0) / np.linalg.norm(before, axis=0)
        np.testing.assert_allclose(change[:, metadata.CHANGE_FIELDS.index("response")], expected, rtol=1e-5)
        old, new = (kernels[s].reshape(-1, 4) for s in (step - 1, step))
        expected_kernel = np.linalg.norm(new - old, axis=0) / np.linalg.norm(old, axis=0)
        np.testing.assert_allclose(change[:, metadata.CHANGE_FIELDS.index("kernel")], expected_kernel, rtol=1e-5)
        changing = events["feature_maps/changing_filters/conv"][step][0]
        response = change[:, metadata.CHANGE_FIELDS.index("response")]
        assert float(changing) == pytest.approx(np.mean(response > metadata.CHANGING_THRESHOLD))
    assert 0 not in events["feature_maps/changing_filters/conv"]


def test_a_kernel_changed_in_place_is_measured_against_its_previous_value(tmp_path):
    kernel = np.ones((3, 3, 1, 2), np.float32)
    writer = FeatureMapsWriter(tmp_path, np.zeros((1, 8, 8, 1), np.float32), background=False)
    for step in range(2):
        assert writer.write(step, {"conv": np.ones((1, 6, 6, 2), np.float32)}, {"conv": kernel})
        kernel *= 2  # the optimizer's update, in place
    writer.close()
    change = _events(writer.run_dir)["change/conv"][1][0]
    np.testing.assert_allclose(change[:, metadata.CHANGE_FIELDS.index("kernel")], [1.0, 1.0], rtol=1e-6)
    assert np.isnan(change[:, metadata.CHANGE_FIELDS.index("response")]).all()  # no pool


def test_pool_series_holds_every_pool_picture_once(logged):
    events, pool_inputs, _, _ = logged
    assert list(events["pool"]) == [0]
    value, content = events["pool"][0]
    assert content["labels"] == [str(i) for i in range(POOL)] and content["input_shape"] == [12, 12, 1]
    pictures = strongest.PoolPictures.of(pool_inputs)
    decoded = np.stack([render.decode_png(png) for png in metadata.pngs_of(value)])
    np.testing.assert_array_equal(decoded, pictures.levels)


def test_whole_input_patches_where_no_field_is_known(tmp_path):
    rng = np.random.default_rng(1)
    pool_inputs = rng.uniform(0, 1, (6, 10, 10, 1)).astype(np.float32)
    writer = FeatureMapsWriter(tmp_path, np.zeros((1, 10, 10, 1), np.float32), pool=pool_inputs, top_k=3, background=False)
    reason = "cannot follow 'up' (UpSampling2D)"
    description = {"up": LayerDescription(patch_reason=reason)}
    assert writer.write(0, {"up": rng.normal(size=(1, 4, 4, 2))}, layers=description, pool_activations={"up": rng.normal(size=(6, 4, 4, 2))})
    writer.close()
    value, content = _events(writer.run_dir)["strongest/up"][0]
    assert content["extra"]["patch"] == "whole input" and content["extra"]["patch_reason"] == reason and content["extra"]["receptive_field"] is None
    topk = _events(writer.run_dir)["topk/up"][0][0]
    sheet = render.decode_png(metadata.pngs_of(value)[0])
    index = int(topk[1, 0, 0])
    np.testing.assert_array_equal(sheet[11:21, 0:10], strongest.PoolPictures.of(pool_inputs).levels[index])


def test_a_field_larger_than_the_input_draws_the_input_it_covers(tmp_path):
    """Along an axis where the field outgrows the input the patch is the whole input, blank (padding) outside the field."""
    rng = np.random.default_rng(3)
    pool_inputs = rng.uniform(-1, 1, (8, 12, 12, 1)).astype(np.float32)
    fields = {"tall": metadata.ReceptiveField((41, 7), (2, 2), (-30, -1)), "huge": metadata.ReceptiveField((483, 483), (32, 32), (-200, -220))}
    writer = FeatureMapsWriter(tmp_path, np.zeros((1, 12, 12, 1), np.float32), pool=pool_inputs, top_k=4, background=False, write_images=False)
    layers = {path: LayerDescription("Conv2D", receptive_field=field) for path, field in fields.items()}
    outputs = {path: rng.normal(size=(1, 6, 6, 3)) for path in fields}
    assert writer.write(0, outputs, layers=layers, pool_activations={path: rng.normal(size=(8, 6, 6, 3)) for path in fields})
    writer.close()
    events = _events(writer.run_dir)
    pictures = strongest.PoolPictures.of(pool_inputs)
    for path, field in fields.items():
        value, content = events[f"strongest/{path}"][0]
        info = metadata.LayerInfo.from_json(content)
        size = (12, 12) if path == "huge" else (12, 7)
        assert content["extra"]["patch_size"] == list(size) and content["extra"]["receptive_field"] == field.to_json()
        assert (info.layout.tile_height, info.layout.tile_width) == size and info.reduction == metadata.NO_REDUCTION
        sheet = render.decode_png(metadata.pngs_of(value)[0])
        topk = metadata.align_fields(events[f"topk/{path}"][0][0], events[f"topk/{path}"][0][1]["fields"], metadata.TOPK_FIELDS)
        for f in range(3):
            for r in range(4):
                index, top, left = (int(topk[f, r, metadata.TOPK_FIELDS.index(name)]) for name in ("input", "top", "left"))
                rows = np.arange(12)[:, None]  # the patch's rows are the input's; its columns start at the field's (tall)
                cols = np.arange(size[1])[None, :] + (0 if path == "huge" else left)
                inside = (rows >= top) & (rows < top + field.size[0]) & (cols >= max(left, 0)) & (cols < min(left + field.size[1], 12))
                expected = np.where(inside, pictures.levels[index][rows, np.clip(cols, 0, 11)], pictures.padding)
                y, x = info.layout.tile_origin(f * info.tiles_per_filter + r)
                np.testing.assert_array_equal(sheet[y : y + size[0], x : x + size[1]], expected, err_msg=f"{path} filter {f} rank {r}")
        if path == "tall":
            tops = topk[:3, :, metadata.TOPK_FIELDS.index("top")]
            assert ((tops < 12 - 41) | (tops > 0)).any()  # some fields leave input rows blank


def test_pool_outputs_without_one_or_two_spatial_axes_are_skipped(tmp_path):
    rng = np.random.default_rng(2)
    writer = FeatureMapsWriter(tmp_path, np.zeros((1, 8, 8, 1), np.float32), pool=rng.uniform(size=(5, 8, 8, 1)), background=False)
    activations = {"conv": rng.normal(size=(1, 4, 4, 2)), "dense": rng.normal(size=(1, 3)), "conv3d": rng.normal(size=(1, 2, 2, 2, 2))}
    pool = {"conv": rng.normal(size=(5, 4, 4, 2)), "dense": rng.normal(size=(5, 3)), "conv3d": rng.normal(size=(5, 2, 2, 2, 2))}
    assert writer.write(0, activations, pool_activations=pool)
    writer.close()
    tags = _events(writer.run_dir)
    assert "strongest/conv" in tags and "strongest/dense" not in tags and "strongest/conv3d" not in tags
    assert {"activations/dense", "activations/conv3d", "change/dense"} <= set(tags)


def test_responses_take_the_finite_maximum_and_rank_nan_last():
    outputs = np.zeros((3, 2, 2, 1), np.float32)
    outputs[0] = np.nan
    outputs[1, 0, 1, 0] = 5.0
    outputs[2, 1, 0, 0] = np.inf
    found = strongest.responses(outputs)
    assert np.isnan(found.values[0, 0]) and found.values[1, 0] == 5.0 and found.values[2, 0] == 0.0  # the finite maximum
    inputs, values, positions = strongest.top_k(found, 3)
    assert inputs[0].tolist() == [1, 2, 0] and positions[0, 0].tolist() == [0, 1]


def test_pool_arguments_are_checked(tmp_path):
    pool = np.zeros((4, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match="pool_labels= was given without pool="):
        FeatureMapsWriter(tmp_path, pool_labels=["a"])
    with pytest.raises(ValueError, match="got 2 labels for 4 pool; pass one label per input"):
        FeatureMapsWriter(tmp_path, pool=pool, pool_labels=["a", "b"])
    with pytest.raises(ValueError, match="a pool of 5001 inputs is more than the 5000 it takes"):
        FeatureMapsWriter(tmp_path, pool=np.zeros((5001, 2, 2, 1), np.float32))
    with pytest.raises(ValueError, match="top_k"):
        FeatureMapsWriter(tmp_path, pool=pool, top_k=0)
    writer = FeatureMapsWriter(tmp_path, np.zeros((1, 8, 8, 1), np.float32), background=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not writer.write(0, {"conv": np.zeros((1, 4, 4, 2))}, pool_activations={"conv": np.zeros((4, 4, 4, 2))})
    assert any("needs the writer's pool; pass pool=" in str(w.message) for w in caught)
    writer.close()


def test_a_dead_filter_that_comes_alive_is_an_infinite_change_and_counts_as_still_changing(tmp_path):
    """Filter 0 is dead (all-zero response) at step 0 and alive at step 1; filter 1 stays dead; filters 2, 3 barely move."""
    rng = np.random.default_rng(3)
    pool_inputs = rng.uniform(0, 1, (POOL, 8, 8, 1)).astype(np.float32)
    before = np.abs(rng.normal(size=(POOL, 6, 6, 4))).astype(np.float32)
    before[..., :2] = 0
    after = before * 1.001
    after[..., 0] = np.abs(rng.normal(size=(POOL, 6, 6)))
    with FeatureMapsWriter(tmp_path, np.zeros((2, 8, 8, 1), np.float32), ["a", "b"], pool=pool_inputs, write_images=False) as writer:
        for step, outputs in enumerate((before, after)):
            assert writer.write(step, {"conv": outputs[:2]}, pool_activations={"conv": outputs})
    events = _events(writer.run_dir)
    response = events["change/conv"][1][0][:, metadata.CHANGE_FIELDS.index("response")]
    assert response[0] == np.inf and response[1] == 0 and (response[2:] < metadata.CHANGING_THRESHOLD).all()
    assert float(events["feature_maps/changing_filters/conv"][1][0]) == pytest.approx(0.25)
    assert metadata.changing_filters(events["change/conv"][1][0]) == pytest.approx(0.25)


def test_large_pool_inputs_go_through_in_smaller_batches():
    """128 RGB inputs of 224 px at once took 22 GB through ResNet50 on the CPU: the batch is bounded by input values too."""
    for shape, expected in (((300, 28, 28, 1), [128, 128, 44]), ((30, 224, 224, 3), [13, 13, 4])):
        seen = []

        def forward(arrays, seen=seen):
            seen.append(len(arrays[0]))
            return {"conv": np.zeros((len(arrays[0]), 2, 2, 3), np.float32)}

        found = strongest.pool_responses(forward, [np.zeros(shape, np.float32)], {"conv": False}, 8)
        assert seen == expected and found["conv"].values.shape == (shape[0], 3)


def _reference_sheet(pictures: strongest.PoolPictures, inputs, positions, field, max_patch: int) -> np.ndarray:
    """The sheet's pixels as the first implementation drew them: each patch's whole window cropped (the padding level
    outside the input and the field), then block-averaged in float32; kept to check the faster drawing against."""
    height, width = pictures.levels.shape[1:3]
    filters, k = inputs.shape
    if field is None:
        corners, field_size = np.zeros((filters, k, 2), np.int64), (height, width)
    else:
        if height == 1 and len(field.size) == 1:
            field = metadata.ReceptiveField((1, *field.size), (1, *field.jump), (0, *field.start))
        corners, field_size = np.asarray(field.start) + positions * np.asarray(field.jump), tuple(field.size)
    clipped = (field_size[0] > height, field_size[1] > width)
    size = (height if clipped[0] else field_size[0], width if clipped[1] else field_size[1])
    fh, fw = (-(-side // max_patch) for side in size)
    tile = (size[0] // fh, size[1] // fw)
    strip = height == 1
    layout = metadata.GridLayout(render.reduce.STRIP_HEIGHT if strip else tile[0], tile[1], filters, max(k, 1), 1)
    pixels = np.full((layout.height, layout.width, *pictures.levels.shape[3:]), metadata.GUTTER_VALUE, np.uint8)
    for f in range(filters):
        for r in range(k):
            top, left = (int(v) for v in corners[f, r])
            window_top, window_left = 0 if clipped[0] else top, 0 if clipped[1] else left
            window = np.full((*size, *pictures.levels.shape[3:]), pictures.padding, np.uint8)
            for y in range(size[0]):
                for x in range(size[1]):
                    row, col = window_top + y, window_left + x
                    if max(top, 0) <= row < min(top + field_size[0], height) and max(left, 0) <= col < min(left + field_size[1], width):
                        window[y, x] = pictures.levels[inputs[f, r], row, col]
            blocks = window[: tile[0] * fh, : tile[1] * fw].astype(np.float32).reshape(tile[0], fh, tile[1], fw, *window.shape[2:])
            patch = np.round(blocks.mean(axis=(1, 3))).astype(np.uint8)
            y, x = layout.tile_origin(f * layout.cols + r)
            pixels[y : y + layout.tile_height, x : x + layout.tile_width] = np.repeat(patch, render.reduce.STRIP_HEIGHT, axis=0) if strip else patch
    return pixels


@pytest.mark.parametrize(
    "shape, field, max_patch",
    [
        ((96, 96, 3), metadata.ReceptiveField((67, 67), (8, 8), (-26, -26)), 12),  # summed from the input (window over 64x64)
        ((96, 96, 3), metadata.ReceptiveField((67, 67), (8, 8), (-26, -26)), 48),
        ((96, 80, 1), metadata.ReceptiveField((339, 339), (16, 16), (-154, -154)), 12),  # larger than the input both ways
        ((96, 80, 3), metadata.ReceptiveField((339, 41), (16, 4), (-154, -20)), 7),  # larger along rows only
        ((40, 40, 3), metadata.ReceptiveField((19, 19), (4, 4), (-6, -6)), 5),  # cropped, then averaged
        ((40, 40, 1), metadata.ReceptiveField((3, 3), (2, 2), (-1, -1)), 48),  # no averaging
        ((96, 96, 3), None, 10),  # no field: the whole input
        ((1, 300, 1), metadata.ReceptiveField((90,), (8,), (-40,)), 12),  # 1-D: strips
        ((1, 5000, 1), metadata.ReceptiveField((9000,), (64,), (-4000,)), 12),  # 1-D, summed from the input
    ],
)
def test_sheet_pixels_are_the_window_crops_block_averaged(shape, field, max_patch):
    """Whatever path draws a patch (crop then average, or sums over the part of the input it covers), the sheet is
    pixel for pixel the block means of each window cropped whole, padding outside the input and the field."""
    rng = np.random.default_rng(7)
    pool = rng.uniform(-1, 1, (12, *shape)).astype(np.float32)
    pictures = strongest.PoolPictures.of(pool[:, 0] if shape[0] == 1 else pool)
    inputs = rng.integers(0, 12, (5, 4))
    inputs[1] = inputs[0]  # the same patches twice: drawn once
    positions = rng.integers(0, 12, (5, 4, 2))
    positions[1] = positions[0]
    if shape[0] == 1:
        positions[..., 0] = 0
    sheet = strongest.patch_sheet(pictures, inputs, positions, field, max_patch)
    np.testing.assert_array_equal(sheet.pixels, _reference_sheet(pictures, inputs, positions, field, max_patch))
