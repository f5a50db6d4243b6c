"""The ``tb-featuremaps`` command line on a real training run: list, figure, sheet, GIF and its errors."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers.logs import write_newer_format_run, write_run
from PIL import Image

from tb_featuremaps import reader
from tb_featuremaps.export import cli
from tb_featuremaps.export import figures as export
from tb_featuremaps.format import metadata


def _gray(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32)


def _frames(path) -> list[np.ndarray]:
    frames = []
    with Image.open(path) as image:
        for position in range(image.n_frames):
            image.seek(position)
            frames.append(np.asarray(image.convert("L"), dtype=np.float32))
    return frames


def test_list_names_runs_layers_shapes_and_steps(trained_logdir, capsys):
    assert cli.main(["list", trained_logdir]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "run feature_maps: 10 probes (0 1 2 3 4 5 6 7 8 9), steps count epochs"
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert lines["conv1"].split() == ["conv1", "Conv2D", "28×28×8", "8", "0..12", "(13)"]
    assert lines["pool2"].split()[1:4] == ["MaxPooling2D", "7×7×16", "16"]
    assert "weights: conv1, conv2" in out


def test_list_imports_neither_matplotlib_nor_tensorflow(tmp_path):
    """``list`` in a fresh process, as the installed command runs it: no drawing or TensorFlow libraries are loaded."""
    write_run(tmp_path / "feature_maps", [0, 1])
    script = (
        "import sys; from tb_featuremaps.export import cli; sys.argv = ['tb-featuremaps', 'list', sys.argv[1]]; code = cli.main(); "
        "print(code, [name for name in ('matplotlib', 'tensorflow', 'keras', 'boto3') if name in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "0 []"


def test_figure_has_one_titled_subplot_per_filter(trained_logdir, tmp_path):
    out = tmp_path / "figure.png"
    assert cli.main(["figure", trained_logdir, "--layer", "conv2", "--probe", "3", "-o", str(out)]) == 0
    pixels = _gray(out)
    assert 400 <= pixels.shape[0] <= 3000 and 400 <= pixels.shape[1] <= 3000
    assert pixels.std() > 20, "the figure is blank"

    run = reader.load(trained_logdir)["feature_maps"]
    figure = export.layer_figure(run, run.layers["conv2"], -1, probe=3)
    titles = [axes.get_title() for axes in figure.axes if axes.images]
    assert titles == ["Input (probe 3 (label 3))"] + [f"Filter {i}" for i in range(16)]
    assert figure.get_suptitle() == "Hidden layer: conv2 — epoch 12 — probe 3 (label 3)"


def test_weights_figure_at_a_given_step(trained_logdir, tmp_path):
    out = tmp_path / "kernels.png"
    assert cli.main(["figure", trained_logdir, "--layer", "conv1", "--kind", "weights", "--step", "0", "--cmap", "viridis", "-o", str(out)]) == 0
    with Image.open(out) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert (np.abs(rgb[..., 0] - rgb[..., 1]) > 30).any(), "viridis should not come out gray"


def test_sheet_rows_are_steps_and_tiles_change_over_training(trained_logdir, tmp_path):
    out = tmp_path / "sheet.png"
    assert cli.main(["sheet", trained_logdir, "--layer", "conv1", "--steps", "0,12", "-o", str(out)]) == 0
    pixels = _gray(out)
    # Locate the cells through the same figure's geometry (the command saves at the figure's dpi).
    run = reader.load(trained_logdir)["feature_maps"]
    figure = export.contact_sheet(run, run.layers["conv1"], [0, 12])
    figure.draw_without_rendering()
    box = figure.axes[0].images[0].get_window_extent()
    assert pixels.shape == (round(figure.bbox.height), round(figure.bbox.width))
    top, left = pixels.shape[0] - box.y1, box.x0
    cell_h, cell_w = box.height / 2, box.width / 8
    height, width = int(cell_h - 6), int(cell_w - 6)  # the same size in both rows, whatever the fractions
    x = int(left + 2)
    first, last = (pixels[y : y + height, x : x + width] for y in (int(top + row * cell_h + 2) for row in (0, 1)))
    assert first.std() > 10, "filter 0's tile is blank"
    assert np.abs(first - last).mean() > 2, "filter 0 looks the same at step 0 and step 12"


def test_gif_has_one_frame_per_step(trained_logdir, tmp_path):
    out = tmp_path / "anim.gif"
    assert cli.main(["gif", trained_logdir, "--layer", "pool1", "--probe", "5", "--fps", "10", "-o", str(out)]) == 0
    frames = _frames(out)
    assert len(frames) == 13
    assert frames[0].shape == frames[-1].shape and min(frames[0].shape) >= 200
    assert frames[0].std() > 20 and np.abs(frames[0] - frames[-1]).mean() > 2


def test_gif_of_one_filter_at_chosen_steps(trained_logdir, tmp_path):
    out = tmp_path / "filter.gif"
    assert cli.main(["gif", trained_logdir, "--layer", "conv1", "--filter", "2", "--steps", "0,6,12", "-o", str(out)]) == 0
    assert len(_frames(out)) == 3


def test_sample_indices_spread_evenly_with_both_ends():
    assert export.sample_indices(13, 4) == [0, 4, 8, 12]
    assert export.sample_indices(3, 10) == [0, 1, 2]


def test_progress_bar_only_when_asked(trained_logdir, tmp_path, capsys):
    stream = io.StringIO()
    with cli.Progress("gif", 2, enabled=True, stream=stream) as tick:
        tick()
        tick()
    assert stream.getvalue().endswith("] 2/2\n")
    assert cli.main(["sheet", trained_logdir, "--layer", "pool2", "--max-steps", "3", "-o", str(tmp_path / "quiet.png")]) == 0
    assert capsys.readouterr().err == "", "no progress bar when stderr is not a terminal"


def test_command_runs_as_a_console_script(trained_logdir, tmp_path):
    out = tmp_path / "sheet.png"
    command = [shutil.which("tb-featuremaps")] if shutil.which("tb-featuremaps") else [sys.executable, "-m", "tb_featuremaps.cli"]
    done = subprocess.run(
        [*command, "sheet", trained_logdir, "--layer", "conv2", "--max-steps", "4", "--progress", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.rstrip().endswith("4/4")
    assert _gray(out).std() > 20


@pytest.mark.parametrize(
    "args, message",
    [
        (["figure", "{logdir}", "--layer", "dense"], "layer 'dense' in run 'feature_maps'; available: conv1, pool1, conv2, pool2 (pass"),
        (["figure", "{logdir}", "--layer", "pool1", "--kind", "weights"], "available: conv1, conv2"),
        (["figure", "{logdir}", "--layer", "conv1", "--run", "train"], "unknown run 'train'; available runs: feature_maps"),
        (["figure", "{logdir}", "--layer", "conv1", "--step", "99"], "epoch '99' is not logged for conv1; pass --step last or one of: 0..12"),
        (["sheet", "{logdir}", "--layer", "conv1", "--steps", "0,13"], "epoch '13' is not logged for conv1; pass --steps with some of: 0..12"),
        (["figure", "{logdir}", "--layer", "conv1", "--probe", "10"], "probe 10 does not exist"),
        (["gif", "{logdir}", "--layer", "conv1", "--filter", "8"], "pass --filter 0..7"),
        (["figure", "{empty}", "--layer", "conv1"], "no feature-map runs under"),
        (["figure", "{missing}", "--layer", "conv1"], "does not exist; pass the log_dir"),
        (["figure", "{logdir}", "--layer", "conv1", "-o", "{tmp}/no/such/dir/out.png"], "output directory"),
        (["gif", "{logdir}", "--layer", "conv1", "-o", "{tmp}/anim.png"], "ending in one of .gif"),
    ],
)
def test_errors_exit_2_with_one_line(trained_logdir, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"logdir": trained_logdir, "empty": str(tmp_path / "empty"), "missing": str(tmp_path / "missing"), "tmp": str(tmp_path)}
    argv = [arg.format(**paths) for arg in args]
    if "-o" not in argv:
        argv += ["-o", os.path.join(str(tmp_path), "out.gif" if argv[0] == "gif" else "out.png")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tb-featuremaps: error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.gif").exists()


def _batch_logdir(logdir) -> str:
    """Run ``feature_maps`` logged per batch: layer ``conv`` at batches 0, 50 and 100 (probes ``a``, ``b``)."""
    write_run(logdir / "feature_maps", (0, 50, 100), step_unit="batch")
    return str(logdir)


def test_steps_are_named_in_the_run_s_unit(tmp_path, capsys, monkeypatch):
    logdir = _batch_logdir(tmp_path)
    assert cli.main(["list", logdir]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "run feature_maps: 2 probes (a b), steps count batches"
    assert cli.main(["figure", logdir, "--layer", "conv", "--step", "7", "-o", str(tmp_path / "out.png")]) == 2
    assert "error: batch '7' is not logged for conv; pass --step last or one of: 0, 50, 100" in capsys.readouterr().err

    run = reader.load(logdir)["feature_maps"]
    conv = run.layers["conv"]
    assert export.layer_figure(run, conv, 2, probe=1).get_suptitle() == "Hidden layer: conv — batch 100 — probe 1 (label b)"
    sheet = export.contact_sheet(run, conv, [0, 2])
    assert [label.get_text() for label in sheet.axes[0].get_yticklabels()] == ["batch 0", "batch 100"]

    titles = []

    class RecordingWriter(export.PillowWriter):
        def grab_frame(self, **kwargs):
            titles.append(self.fig.axes[0].get_title())
            super().grab_frame(**kwargs)

    monkeypatch.setattr(export, "PillowWriter", RecordingWriter)
    export.write_gif(run, conv, str(tmp_path / "anim.gif"), [0, 1, 2], probe=1)
    assert titles == [f"conv — batch {step} — probe 1 (label b)" for step in (0, 50, 100)]


def test_a_picture_reads_only_its_run(trained_logdir, tmp_path, capsys):
    """A run of a newer format beside the default run: a figure of the default run reads only its run; ``list`` lists
    both and names the series it left out."""
    logdir = tmp_path / "logs"
    shutil.copytree(trained_logdir, logdir)
    write_newer_format_run(logdir / "future")
    assert cli.main(["figure", str(logdir), "--layer", "conv1", "-o", str(tmp_path / "conv1.png")]) == 0
    assert _gray(tmp_path / "conv1.png").std() > 20
    capsys.readouterr()
    assert cli.main(["list", str(logdir)]) == 0
    captured = capsys.readouterr()
    assert "run feature_maps:" in captured.out and "run future:" in captured.out
    assert f"run 'future': series 'activations/new' left out: feature_maps format version {metadata.FORMAT_VERSION + 1} is newer" in captured.err


def _torch_logdir(tmp_path) -> str:
    """A PyTorch run (``tb_featuremaps.torch``, NCHW activations) of a 28×28 convolution of 8 filters and its 14×14 pooling."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the PyTorch producer is optional")
    from tb_featuremaps.torch import FeatureMapsLogger

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8 * 14 * 14, 10))
    with FeatureMapsLogger(module, tmp_path, layers=["0", "1"]) as logger:
        assert logger.log(0)
    return str(tmp_path)


def test_pytorch_and_keras_shapes_are_both_shown_channels_last(trained_logdir, tmp_path, capsys):
    """``list``, ``figure`` and the panel's listing show NCHW outputs as H×W×C, as they show Keras' NHWC ones."""
    from helpers.plugin import get_json, make_client

    logdir = _torch_logdir(tmp_path / "torch")
    run = reader.load(logdir)["feature_maps"]
    assert run.layers["0"].info.output_shape == [None, 8, 28, 28]  # the format keeps the producer's own shape
    assert cli.main(["list", logdir]) == 0
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert lines["0"][1:3] == ["Conv2d", "28×28×8"] and lines["1"][1:3] == ["MaxPool2d", "14×14×8"]
    assert export.layer_figure(run, run.layers["0"], -1).texts[-1].get_text().startswith("Conv2d, 8 filters, 28×28 maps;")
    keras = reader.load(trained_logdir)["feature_maps"]
    assert export.layer_figure(keras, keras.layers["conv1"], -1).texts[-1].get_text().startswith("Conv2D, 8 filters, 28×28 maps;")
    for directory, name, shape in ((logdir, "0", [28, 28, 8]), (trained_logdir, "conv1", [28, 28, 8])):
        (listed,) = get_json(make_client(directory), "runs")["runs"]
        assert {entry["layer"]: entry["map_shape"] for entry in listed["layers"]}[name] == shape


@pytest.mark.parametrize(
    ("output_shape", "tile", "reduction", "expected"),
    [
        ([None, 28, 28, 8], (28, 28), "none", [28, 28, 8]),  # NHWC
        ([None, 8, 28, 28], (28, 28), "none", [28, 28, 8]),  # NCHW
        ([None, 8, 16], (8, 16), "none", [16, 8]),  # NCL: a 1-D map drawn as a strip
        ([None, 8, 5, 8], (5, 8), "none", [5, 8, 8]),  # NCHW with W = C: the tiles decide
        ([None, 8, 5, 8], (8, 5), "none", [8, 5, 8]),  # NHWC with H = C
        ([None, 8], (1, 1), "none", [8]),  # Dense
    ],
)
def test_map_shape_finds_the_channel_axis(output_shape, tile, reduction, expected):
    layout = metadata.GridLayout(tile[0], tile[1], 2, 4, 1)
    info = metadata.LayerInfo("activations", "c", "C", 0, output_shape, layout, 8, 8, ["a"], "epoch", reduction=reduction)
    assert info.map_shape == expected


def _labelled_probes_run(tmp_path) -> reader.RunLog:
    """A run whose probes are labelled "7", "3", "9", "1": no probe's label is its index."""
    from helpers.logs import log_writer, step_maps, write_step

    with log_writer(tmp_path / "feature_maps", ["7", "3", "9", "1"]) as writer:
        write_step(writer, 0, {"conv": np.concatenate([step_maps(0), step_maps(1)])})
    return reader.load(str(tmp_path))["feature_maps"]


def test_a_probe_is_titled_by_its_index_and_its_label(tmp_path):
    """``--probe 3`` is the fourth probe, labelled "1": every title says both, distinctly."""
    run = _labelled_probes_run(tmp_path)
    conv = run.layers["conv"]
    figure = export.layer_figure(run, conv, 0, probe=3)
    assert figure.get_suptitle() == "Hidden layer: conv — epoch 0 — probe 3 (label 1)"
    assert figure.axes[0].get_title() == "Input (probe 3 (label 1))"
    assert export.contact_sheet(run, conv, [0], probe=3).get_suptitle() == "conv over training — probe 3 (label 1)"


def _inside(figure, text) -> bool:
    box, frame = text.get_window_extent(), figure.bbox
    return box.x0 >= frame.x0 - 0.5 and box.x1 <= frame.x1 + 0.5 and box.y0 >= frame.y0 - 0.5 and box.y1 <= frame.y1 + 0.5


def test_change_titles_fit_and_identical_lines_are_told_apart(tmp_path):
    """The change figure's title and subtitle lie inside the figure; a layer whose line is another's (a pooling after its
    convolution) is drawn in another style and marker, and the legend says it is the same."""
    import dataclasses

    from helpers.logs import write_pool_run

    write_pool_run(tmp_path / "a_rather_long_run_name_for_the_title", [0, 1, 2, 3])
    run = reader.load(str(tmp_path))["a_rather_long_run_name_for_the_title"]
    conv = run.layers["conv"]
    twin = dataclasses.replace(conv, info=dataclasses.replace(conv.info, layer="pool"))
    figure = export.change_figure(run, [conv, twin])
    figure.draw_without_rendering()
    axes = figure.axes[0]
    for text in (figure._suptitle, axes.title):
        assert text.get_text() and _inside(figure, text), text.get_text()
    first, second = axes.get_lines()
    assert (first.get_linestyle(), first.get_marker()) != (second.get_linestyle(), second.get_marker())
    np.testing.assert_array_equal(first.get_ydata(), second.get_ydata())
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["conv", "pool (same as conv)"]


def test_topk_labels_have_an_outline_and_a_box(tmp_path):
    """Each pool label on the topk figure has a dark outline (path effect) and an opaque box, so yellow reads on white."""
    from helpers.logs import write_pool_run

    write_pool_run(tmp_path / "run", [0])
    run = reader.load(str(tmp_path))["run"]
    figure = export.topk_figure(run, run.strongest["conv"], 0)
    labels = [text for text in figure.axes[0].texts if text.get_color() == "yellow"]
    assert len(labels) == run.strongest["conv"].info.filters_shown * run.strongest["conv"].top_k
    for text in labels:
        assert text.get_path_effects() and text.get_bbox_patch() is not None
        assert text.get_bbox_patch().get_alpha() >= 0.8
