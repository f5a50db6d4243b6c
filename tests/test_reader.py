"""``reader.load`` on real event files: corrupt lengths, duplicated steps, run naming and filtering, values from gray levels."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from helpers.logs import LABELS, log_writer, move_event_file, step_maps, write_run, write_step
from helpers.plugin import multiplexer_for

from tb_featuremaps import reader, render
from tb_featuremaps.format import eventfile, metadata
from tb_featuremaps.writer.summary import SummaryWriter


def test_a_huge_record_length_ends_the_file_without_crashing(tmp_path):
    """A header claiming 2^40 bytes (valid CRC) after step 2: the earlier steps still read, in a process of its own."""
    write_run(tmp_path / "feature_maps", [0, 1, 2])
    (path,) = (tmp_path / "feature_maps").iterdir()
    header = struct.pack("<Q", 1 << 40)
    with open(path, "ab") as handle:
        handle.write(header + struct.pack("<I", eventfile.masked_crc32c(header)) + bytes(64))
    script = "import sys; from tb_featuremaps import reader; print(reader.load(sys.argv[1])['feature_maps'].layers['conv'].steps.tolist())"
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.splitlines()[-1] == "[0, 1, 2]"


def test_a_damaged_record_is_found_when_its_values_are_decoded(tmp_path):
    """A byte flipped inside step 1's grid: its framing is whole, so every step is listed; decoding step 1 names the damage."""
    write_run(tmp_path / "feature_maps", [0, 1, 2])
    (path,) = (tmp_path / "feature_maps").iterdir()
    data = bytearray(path.read_bytes())
    (event,) = [event for event in eventfile.index_events(str(path)) if event.step == 1 and any(v.tag == "activations/conv" for v in event.values)]
    data[data.index(b"IDAT", event.values[0].record.offset) + 8] ^= 0xFF  # inside the first PNG's pixels
    path.write_bytes(bytes(data))
    conv = reader.load(str(tmp_path))["feature_maps"].layers["conv"]
    assert conv.steps.tolist() == [0, 1, 2]
    assert conv.tiles(0).shape == conv.tiles(2).shape
    with pytest.raises(metadata.FormatError, match="at step 1 cannot be read: .* fails its CRC"):
        conv.tiles(1)
    assert [event.step for event in eventfile.read_events(str(path)) if event.summary.value][-1] == 0  # the strict reader stops there
    done = subprocess.run(
        [sys.executable, "-m", "tb_featuremaps.export.cli", "figure", str(tmp_path), "--layer", "conv", "--step", "1", "-o", str(tmp_path / "f.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "fails its CRC" in done.stderr.splitlines()[-1], done.stderr[-2000:]


def test_a_step_written_again_keeps_its_last_value(tmp_path):
    """Two trainings into one run directory (0..5, then 0..2 again): every step once, the later writing wins, grids and stats alike."""
    run_dir = tmp_path / "feature_maps"
    write_run(run_dir, range(6))
    write_run(tmp_path / "second" / "feature_maps", range(3), scale=10.0)
    move_event_file(tmp_path / "second" / "feature_maps", run_dir)  # the second training's file after the first's

    def check(scale_of):
        conv = reader.load(str(tmp_path))["feature_maps"].layers["conv"]
        assert conv.steps.tolist() == [0, 1, 2, 3, 4, 5]
        for position, step in enumerate(conv.steps.tolist()):
            maps = step_maps(step, scale_of(step))
            drawn = render.draw(maps)
            stats = drawn.stats
            np.testing.assert_array_equal(conv.stats[position], stats)
            assert conv.pngs[position] == render.to_pngs(drawn, conv.info.layout)

    check(lambda step: 10.0 if step < 3 else 1.0)
    first = sorted(run_dir.iterdir())[0]
    shutil.copy(first, run_dir / "events.out.tfevents.9999999999.copy")  # files are read in name order: this one last
    check(lambda step: 1.0)


def test_runs_are_named_as_tensorboard_names_them_and_read_only_when_asked(tmp_path, monkeypatch):
    write_run(tmp_path, [0, 1], layers=("conv", "dense"))
    write_run(tmp_path / "nested" / "run", [0])
    (tmp_path / "train").mkdir()
    SummaryWriter(str(tmp_path / "train")).close()  # no feature-map series: not a run
    multiplexer = multiplexer_for(tmp_path, keep_every=())
    assert sorted(multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME)) == [".", "nested/run"]
    assert list(reader.load(str(tmp_path))) == [".", "nested/run"]

    opened = []
    index_events = eventfile.index_events
    monkeypatch.setattr(eventfile, "index_events", lambda path: opened.append(path) or index_events(path))
    (top,) = reader.load(str(tmp_path), run=".", layers=["dense"]).values()
    assert all("nested" not in path for path in opened) and opened
    assert top.name == "." and list(top.layers) == ["dense"] and top.probe_labels == LABELS
    whole = reader.load(str(tmp_path), run=".")["."].layers["dense"]
    assert top.layers["dense"].pngs == whole.pngs and (top.layers["dense"].stats == whole.stats).all()
    assert list(reader.load(str(tmp_path), run="nested/run")) == ["nested/run"]
    assert reader.load(str(tmp_path), run="missing") == {}


def test_values_come_back_from_the_gray_levels(tmp_path):
    """Tile values from the PNG and the stats: min and max as logged, every value within half a gray level, NaN as NaN."""
    maps = np.random.default_rng(3).normal(size=(2, 9, 7, 5)).astype(np.float32)
    maps[1, :3, :, 2] = np.nan
    maps[0, 4, 4, 1] = np.inf
    with log_writer(tmp_path / "feature_maps") as writer:
        write_step(writer, 0, {"conv": maps})
    conv = reader.load(str(tmp_path))["feature_maps"].layers["conv"]
    stats = conv.stats[0]
    for probe in range(2):
        values = conv.values(0, probe)
        truth = np.moveaxis(maps[probe], -1, 0)
        assert values.dtype == np.float32 and values.shape == truth.shape
        np.testing.assert_array_equal(np.isnan(values), ~np.isfinite(truth))
        low, high = stats[probe, :, 0], stats[probe, :, 1]
        level = (high - low) / 255 * (1 + 1e-6)
        assert (np.abs(np.nanmin(values, axis=(1, 2)) - low) <= level / 2).all()
        assert (np.abs(np.nanmax(values, axis=(1, 2)) - high) <= level / 2).all()
        finite = np.isfinite(truth)
        assert (np.abs(values - truth)[finite] <= np.broadcast_to(level[:, None, None] / 2, truth.shape)[finite]).all()
    with pytest.raises(ValueError, match="no stats"):
        reader.LayerLog(conv.info, conv.steps, conv.wall_times, conv.pngs).values(0)


def _write_value(run_dir, step: int, tag: str, tensor, content: bytes, data_class=None) -> None:
    """One value of the plugin's by hand, with ``content`` as its metadata (what no producer writes)."""
    from tensorboard.compat.proto import summary_pb2

    writer = SummaryWriter(str(run_dir))
    summary_metadata = summary_pb2.SummaryMetadata(data_class=data_class or summary_pb2.DATA_CLASS_TENSOR)
    summary_metadata.plugin_data.plugin_name = metadata.PLUGIN_NAME
    summary_metadata.plugin_data.content = content
    writer._add(step, [writer._value(tag, tensor, summary_metadata)])
    writer.close()


def _corrupted_logdir(tmp_path):
    """Run ``good`` (steps 0..2 of ``conv``) and run ``bad``: ``conv`` like good's, plus ``activations/broken`` with content
    that is not JSON, a probes value that is not pictures and ``stats/conv2`` of the wrong rank under a good grid."""
    from tensorboard.util import tensor_util

    write_run(tmp_path / "good", [0, 1, 2])
    write_run(tmp_path / "bad", [0, 1, 2], layers=("conv", "conv2"))
    bad = tmp_path / "bad"
    _write_value(bad, 3, "activations/broken", tensor_util.make_tensor_proto([b"1", b"1", b"x"]), b"{not json")
    return tmp_path


def test_one_malformed_series_leaves_out_only_itself(tmp_path):
    """The good run whole, the bad run's good layers whole; the broken series named in failures and in one warning."""
    logdir = _corrupted_logdir(tmp_path)
    with pytest.warns(reader.ReadWarning, match=r"run 'bad': series 'activations/broken' left out: .*not JSON"):
        runs = reader.load(str(logdir))
    assert list(runs) == ["bad", "good"]
    assert runs["good"].layers["conv"].steps.tolist() == [0, 1, 2] and runs["good"].failures == []
    assert list(runs["bad"].layers) == ["conv", "conv2"]
    assert runs["bad"].layers["conv"].tiles(2).shape == runs["good"].layers["conv"].tiles(2).shape
    (failure,) = runs.failures
    assert (failure.run, failure.series) == ("bad", "activations/broken") and "not JSON" in failure.reason
    assert runs["bad"].failures == [failure]


def test_a_run_whose_probes_are_not_pictures_keeps_its_layers(tmp_path):
    """A ``probes`` value (its last) that is a float tensor: that series is left out, the run's layers read, the other run untouched."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.util import tensor_util

    write_run(tmp_path / "good", [0, 1])
    write_run(tmp_path / "bad", [0, 1])
    content = metadata.probes_metadata(LABELS, [8, 8, 1]).plugin_data.content  # read at its last step: this one
    floats = tensor_util.make_tensor_proto(np.zeros(3, np.float32))
    _write_value(tmp_path / "bad", 9, metadata.PROBES_TAG, floats, content, summary_pb2.DATA_CLASS_BLOB_SEQUENCE)
    with pytest.warns(reader.ReadWarning, match="series 'probes' left out: .*not a \\[width, height, png"):
        runs = reader.load(str(tmp_path))
    assert runs["bad"].layers["conv"].steps.tolist() == [0, 1] and runs["bad"].probe_images == []
    assert runs["good"].layers["conv"].steps.tolist() == [0, 1] and len(runs["good"].probe_images) == 2


def test_a_stats_series_of_the_wrong_rank_fails_only_when_its_values_are_decoded(tmp_path):
    """``stats/conv`` written as ``[F, 5]``: listing the run works, decoding its stats names the series, the step and the shape."""
    from tensorboard.util import tensor_util

    write_run(tmp_path / "bad", [0])
    writer = SummaryWriter(str(tmp_path / "bad"))
    layout = metadata.GridLayout.for_tiles(2, 2, 2)
    info = metadata.LayerInfo("activations", "flat", "Conv2D", 1, [None, 2, 2, 2], layout, 2, 2, LABELS, "epoch")
    writer.write_layer(1, info, [render.encode_png(np.zeros((layout.height, layout.width), np.uint8))] * 2, images_copy=False)
    flat = tensor_util.make_tensor_proto(np.zeros((2, 5), np.float32))
    writer._add(1, [writer._value("stats/flat", flat, metadata.fields_metadata("stats", "flat"))])
    writer.close()
    runs = reader.load(str(tmp_path))
    assert runs.failures == [] and list(runs["bad"].layers) == ["conv", "flat"]
    with pytest.raises(metadata.FormatError, match=r"stats of 'flat' at step 1 have shape \(2, 5\)"):
        runs["bad"].layers["flat"].stats_at(0)


def test_the_command_line_names_what_it_left_out_and_goes_on(tmp_path, capsys):
    """``list``: exit 0, both runs listed on stdout, one stderr line naming the run, the series and why."""
    from tb_featuremaps.export import cli

    logdir = _corrupted_logdir(tmp_path)
    assert cli.main(["list", str(logdir)]) == 0
    captured = capsys.readouterr()
    assert "run good:" in captured.out and "run bad:" in captured.out
    (line,) = captured.err.splitlines()
    assert line.startswith("tb-featuremaps: warning: run 'bad': series 'activations/broken' left out: ") and "not JSON" in line
