"""The NumPy CRC-32C, event files and their summaries, and the zlib PNG encoder, against the reference implementations."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as reference_masked_crc32c

from tb_featuremaps import render
from tb_featuremaps.format import eventfile, metadata
from tb_featuremaps.writer.summary import SummaryWriter


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 127, 128, 129, 1000, 4095, 65536, 262143, 262144, 262145, 300001])
def test_masked_crc32c_matches_tensorboard(size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert eventfile.masked_crc32c(data) == reference_masked_crc32c(data)


def test_crc32c_check_value():
    assert eventfile.crc32c(b"123456789") == 0xE3069283


def test_event_file_reads_back(tmp_path):
    writer = eventfile.EventFile(str(tmp_path))
    payload = np.random.default_rng(0).bytes(200_000)
    for step in range(3):
        event = event_pb2.Event(step=step, wall_time=1.0 + step)
        event.summary.value.add(tag="blob").tensor.string_val.append(payload)
        writer.add(event)
    writer.flush()
    writer.close()
    (path,) = tmp_path.iterdir()
    assert path.name.startswith("events.out.tfevents.")
    events = list(event_file_loader.EventFileLoader(str(path)).Load())
    assert events[0].file_version == "brain.Event:2"
    assert [event.step for event in events[1:]] == [0, 1, 2]
    assert events[-1].summary.value[0].tensor.string_val[0] == payload


def test_files_sort_in_the_order_they_were_made(tmp_path, monkeypatch):
    """Readers take a run's files in name order: the 10th file of a second must not sort before the 9th."""
    monkeypatch.setattr(eventfile.time, "time", lambda: 1_700_000_000.0)
    monkeypatch.setattr(eventfile, "_FILE_IDS", itertools.count(8))
    made = [eventfile.EventFile(str(tmp_path)) for _ in range(4)]
    for file in made:
        file.close()
    assert sorted(file.path for file in made) == [file.path for file in made]


def test_descriptions_show_names_as_text(tmp_path):
    """TensorBoard renders descriptions as Markdown: a layer or class name must not become an element or emphasis."""
    layout = metadata.GridLayout.for_tiles(1, 2, 2)
    info = metadata.LayerInfo("activations", "<img src=x>", "My_Odd_Layer", 0, [None, 2, 2, 1], layout, 1, 1, ["p"], "epoch")
    writer = SummaryWriter(str(tmp_path))
    stats = np.zeros((1, 1, len(metadata.STATS_FIELDS)), np.float32)
    writer.write_layer(0, info, [render.encode_png(np.zeros((2, 2), np.uint8))], tensors={metadata.KIND_STATS: stats}, health={"dead_filters": 1})
    writer.close()
    (path,) = tmp_path.iterdir()
    (event,) = [event for event in eventfile.read_events(str(path)) if event.HasField("summary")]
    descriptions = {value.tag: value.metadata.summary_description for value in event.summary.value}
    assert len(descriptions) == 4
    for description in descriptions.values():
        assert "<" not in description and "My_Odd" not in description
    copy = descriptions["feature_maps/activations/<img src=x>"]
    assert copy == f"activations of {metadata.markdown_text('<img src=x>')} ({metadata.markdown_text('My_Odd_Layer')}), one image per probe"


@pytest.mark.parametrize("mode", ["L", "LA", "RGB"])
def test_encode_png_round_trips(mode):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (37, 53) if mode != "RGB" else (37, 53, 3), dtype=np.uint8)
    pixels[:10] = 0  # a flat area, as after a ReLU
    alpha = rng.choice(np.array([0, 255], np.uint8), size=(37, 53)) if mode == "LA" else None
    data = render.encode_png(pixels, alpha)
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == mode
        decoded = np.asarray(image)
    expected = pixels if alpha is None else np.stack([pixels, alpha], axis=-1)
    np.testing.assert_array_equal(decoded, expected)
    assert render.encode_all(np.stack([pixels, pixels]), None if alpha is None else np.stack([alpha, alpha])) == [data, data]
