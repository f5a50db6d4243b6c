"""Checks of truth of the convergence math: linear CKA against an independent implementation, selectivity and
top-k overlap against hand computations (tb_featuremaps.format.convergence)."""

from __future__ import annotations

import numpy as np
import pytest

from tb_featuremaps.format import convergence


def hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al. 2019 written out: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), K = XXᵀ, L = YYᵀ, H = I − 11ᵀ/n."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    gram_x, gram_y = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return hsic(gram_x, gram_y) / np.sqrt(hsic(gram_x, gram_x) * hsic(gram_y, gram_y))


def _layer(rng, steps: int, count: int, filters: int) -> np.ndarray:
    """Responses ``[steps, count, filters]`` of a layer drifting towards its final representation."""
    final = np.maximum(rng.normal(size=(count, filters)), 0)
    return np.stack([final + (0.8**step) * 3 * rng.normal(size=(count, filters)) for step in range(steps)])


@pytest.mark.parametrize("count, filters", [(40, 12), (60, 5), (30, 3)])
def test_cka_equals_the_hsic_formula(count, filters):
    rng = np.random.default_rng(count)
    stack = _layer(rng, 6, count, filters)
    expected = np.array([[hsic_cka(a, b) for b in stack] for a in stack])
    assert np.allclose(convergence.cka_matrix(stack), expected, atol=1e-12)
    assert np.allclose(convergence.cka_to(stack), expected[:, -1], atol=1e-12)
    assert np.allclose(convergence.cka_to(stack, 2), expected[:, 2], atol=1e-12)
    assert convergence.linear_cka(stack[0], stack[3]) == pytest.approx(expected[0, 3], abs=1e-12)
    assert convergence.linear_cka(stack[0], stack[3][:, :2]) == pytest.approx(hsic_cka(stack[0], stack[3][:, :2]), abs=1e-12)


def test_cka_matrix_blocks_give_the_same_values(monkeypatch):
    """Both paths (Gram and cross products) in blocks smaller than the stack equal the whole computation."""
    rng = np.random.default_rng(3)
    for count, filters in ((20, 8), (50, 3)):
        stack = _layer(rng, 9, count, filters)
        whole = convergence.cka_matrix(stack)
        monkeypatch.setattr(convergence, "_BLOCK_VALUES", 3 * count * max(count, filters))
        assert np.allclose(convergence.cka_matrix(stack), whole, atol=1e-12)
        monkeypatch.undo()


def test_cka_is_one_with_itself_and_invariant_to_rotation_and_scaling():
    rng = np.random.default_rng(1)
    x = np.maximum(rng.normal(size=(50, 8)), 0)
    y = x + 0.5 * rng.normal(size=x.shape)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert convergence.linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert convergence.linear_cka(x, x @ q * 7.5) == pytest.approx(1.0, abs=1e-12)
    assert convergence.linear_cka(x @ q * 0.01, y) == pytest.approx(convergence.linear_cka(x, y), abs=1e-12)
    assert convergence.linear_cka(x, y) < 0.99
    matrix = convergence.cka_matrix(np.stack([x, x @ q * 3, y]))
    assert np.allclose(np.diag(matrix), 1.0) and matrix[0, 1] == pytest.approx(1.0)
    assert np.allclose(matrix, matrix.T)


def test_a_constant_or_non_finite_step_is_nan():
    rng = np.random.default_rng(2)
    good = rng.normal(size=(20, 4))
    constant = np.ones((20, 4))
    broken = good.copy()
    broken[3, 1] = np.nan
    assert np.isnan(convergence.linear_cka(good, constant))
    assert np.isnan(convergence.linear_cka(broken, good))
    matrix = convergence.cka_matrix(np.stack([good, constant, broken, good * 2]))
    assert np.isnan(matrix[1]).all() and np.isnan(matrix[:, 2]).all()
    assert matrix[0, 3] == pytest.approx(1.0)
    assert np.isnan(convergence.cka_to(np.stack([good, constant]))).all()


def test_cka_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same N"):
        convergence.linear_cka(np.zeros((5, 2)), np.zeros((6, 2)))
    with pytest.raises(ValueError, match=r"\[steps, N, F\]"):
        convergence.cka_matrix(np.zeros((5, 2)))


def test_settled_step_is_where_the_similarity_stays_above():
    steps = np.array([0, 2, 4, 6, 8])
    assert convergence.settled_step([0.2, 0.97, 0.9, 0.96, 1.0], steps) == 6
    assert convergence.settled_step([0.96, 0.97, 0.99, 0.96, 1.0], steps) == 0
    assert convergence.settled_step([0.2, 0.97, np.nan, 0.96, 1.0], steps) == 6
    assert convergence.settled_step([0.2, 0.5, 0.6, 0.7, 1.0], steps, threshold=0.65) == 6
    assert convergence.settled_step([0.2, 0.5, 0.6, 0.7, np.nan], steps) is None
    assert convergence.settled_step([], []) is None


def test_selectivity_equals_a_hand_computation():
    """Three classes, four filters; hand-computed means and indices."""
    labels = np.array([0, 0, 1, 1, 2, 2])
    responses = np.array(
        [
            [4.0, 1.0, 0.0, 2.0],
            [2.0, 1.0, 0.0, -6.0],  # a negative response counts as 0
            [0.0, 1.0, 0.0, 2.0],
            [0.0, 1.0, 0.0, 2.0],
            [1.0, 1.0, 0.0, 1.0],
            [1.0, 1.0, 0.0, np.nan],  # left out of class 2's mean
        ]
    )
    classes, means = convergence.class_means(responses, labels)
    assert classes.tolist() == [0, 1, 2]
    assert np.allclose(means, [[3, 1, 0, 1], [0, 1, 0, 2], [1, 1, 0, 1]])
    preferred, index = convergence.selectivity(means)
    # filter 0: μmax 3 (class 0), μ−max (0 + 1)/2 = 0.5: (3 − 0.5)/(3 + 0.5) = 5/7
    # filter 1: all alike: 0, preferred the first class; filter 2: silent: NaN, -1
    # filter 3: μmax 2 (class 1), μ−max 1: 1/3
    assert preferred.tolist() == [0, 0, -1, 1]
    assert index[0] == pytest.approx(5 / 7) and index[1] == 0 and np.isnan(index[2]) and index[3] == pytest.approx(1 / 3)


def test_a_filter_responding_to_one_class_only_has_index_one():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 10, 200)
    responses = np.stack([np.where(labels == 7, rng.uniform(1, 5, 200), 0.0), rng.uniform(1, 2, 200)], axis=1)
    classes, means = convergence.class_means(responses, labels)
    preferred, index = convergence.selectivity(means)
    assert classes[preferred[0]] == 7 and index[0] == 1.0
    assert 0 < index[1] < 0.2


def test_selectivity_of_string_labels_and_one_class():
    classes, means = convergence.class_means(np.array([[1.0], [3.0], [2.0]]), np.array(["cat", "dog", "cat"]))
    assert classes.tolist() == ["cat", "dog"] and np.allclose(means, [[1.5], [3.0]])
    assert convergence.selectivity(means)[1][0] == pytest.approx((3 - 1.5) / 4.5)
    assert np.isnan(convergence.selectivity(np.array([[2.0]]))[1][0])
    with pytest.raises(ValueError, match="one label per input"):
        convergence.class_means(np.zeros((3, 2)), np.zeros(4))


def test_topk_overlap_by_hand():
    previous = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [1, 2, -1, -1], [-1, -1, -1, -1]])
    current = np.array([[4, 3, 2, 1], [5, 9, 10, 11], [2, 2, 3, -1], [-1, -1, -1, -1]])
    overlap = convergence.topk_overlap(previous, current)
    # same set; {5,6,7,8} ∩ {5,9,10,11} = 1 of 7; {1,2} vs {2,3}: 1 of 3; nothing known: NaN
    assert overlap[:3] == pytest.approx([1.0, 1 / 7, 1 / 3]) and np.isnan(overlap[3])
    assert convergence.topk_overlap(previous[:, :2], current)[0] == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="same F filters"):
        convergence.topk_overlap(previous, current[:2])


# Stored responses, read back -------------------------------------------------------------------------------------

LAYERS = ("conv1", "pool1", "conv2", "pool2")


def _maxima(model, layer: str, pool: np.ndarray) -> np.ndarray:
    """Each filter's maximum over space for each pool input, from the model itself (not through the package)."""
    import keras

    outputs = keras.Model(model.inputs, model.get_layer(layer).output).predict(pool, verbose=0)
    return outputs.reshape(len(pool), -1, outputs.shape[-1]).max(axis=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small CNN trained 4 epochs with ``FeatureMapsLogger`` and a 100-digit pool with its labels; the maxima at each step."""
    from helpers.models import mnist_digits, small_cnn

    from tb_featuremaps import FeatureMapsLogger, reader

    logdir = tmp_path_factory.mktemp("convergence")
    x, y = mnist_digits(5000)  # sorted by class: every 25th digit trains, every 50th from the 13th is the pool
    x, y, pool, labels = x[::25], y[::25], x[13::50], y[13::50]
    model = small_cnn()
    logger = FeatureMapsLogger(model, str(logdir), x[:2], pool=pool, pool_labels=labels.tolist(), top_k=3, write_images=False)
    truth = {layer: [] for layer in LAYERS}
    for step in range(5):
        if step:
            model.fit(x, y, batch_size=50, epochs=1, verbose=0)
        logger.log(step)
        for layer in LAYERS:
            truth[layer].append(_maxima(model, layer, pool))
    logger.close()
    return reader.load(str(logdir))["feature_maps"], {layer: np.stack(found) for layer, found in truth.items()}, labels, logger.writer.run_dir


def test_stored_responses_are_the_maxima_in_float16(trained):
    run, truth, _, _ = trained
    for layer in LAYERS:
        best = run.strongest[layer]
        assert best.responses.shape == truth[layer].shape and best.responses.dtype == np.float32
        assert np.array_equal(best.responses, truth[layer].astype(np.float16).astype(np.float32), equal_nan=True) or np.allclose(
            best.responses, truth[layer], rtol=2**-10, atol=2**-24
        )
        assert np.array_equal(best.responses_at(2), best.responses[2])


def test_cka_of_stored_responses_equals_the_formula_on_the_float32_maxima(trained):
    run, truth, _, _ = trained
    for layer in LAYERS:
        best = run.strongest[layer]
        expected = np.array([[hsic_cka(a, b) for b in truth[layer]] for a in truth[layer]])
        assert np.abs(best.similarity() - expected).max() < 1e-3, layer
        assert np.allclose(np.diag(best.similarity()), 1.0)
        assert np.abs(best.similarity_to() - expected[:, -1]).max() < 1e-3
        assert best.settled_step() == convergence.settled_step(expected[:, -1], best.steps)


def test_selectivity_scalars_and_reader_agree_with_a_hand_computation(trained):
    import glob

    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.util import tensor_util

    run, truth, labels, folder = trained
    scalars: dict = {}
    for path in glob.glob(f"{folder}/events.out.tfevents.*"):
        for event in event_file_loader.EventFileLoader(path).Load():
            for value in event.summary.value:
                if value.tag.startswith("feature_maps/selectivity/"):
                    scalars.setdefault(value.tag.split("/", 2)[2], {})[event.step] = float(tensor_util.make_ndarray(value.tensor))
    assert set(scalars) == set(LAYERS)
    for layer in LAYERS:
        for position, step in enumerate(run.strongest[layer].steps):
            values = np.maximum(truth[layer][position], 0)
            means = np.stack([values[labels == c].mean(axis=0) for c in range(10)])
            top = means.max(axis=0)
            others = (means.sum(axis=0) - top) / 9
            index = (top - others) / (top + others)
            found = run.selectivity(layer, position)
            known = np.isfinite(index)
            assert np.allclose(found.index[known], index[known], atol=2e-3) and np.isnan(found.index[~known]).all()
            assert found.classes.tolist() == [str(c) for c in range(10)]
            assert scalars[layer][int(step)] == pytest.approx(np.nanmean(index), abs=1e-5)


def test_steps_float16_cannot_hold_are_stored_as_float32(tmp_path):
    """Responses beyond float16's range, or all tiny, come back exactly; NaN stays NaN; the rest are float16."""
    import glob

    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.util import tensor_util

    from tb_featuremaps import FeatureMapsWriter, reader
    from tb_featuremaps.format.kinds import responses as responses_kind
    from tb_featuremaps.writer import LayerDescription

    rng = np.random.default_rng(5)
    pool = rng.uniform(0, 1, (30, 8, 8, 1)).astype(np.float32)
    scales = [1.0, 1e6, 1e-5]
    outputs = [rng.uniform(0.1, 1, (30, 4, 4, 3)).astype(np.float32) * scale for scale in scales]
    outputs[0][4, :, :, 1] = np.nan
    writer = FeatureMapsWriter(tmp_path, pool[:2], ["a", "b"], pool=pool, top_k=2, write_images=False)
    for step, output in enumerate(outputs):
        assert writer.write(step, {"conv": output[:2]}, layers={"conv": LayerDescription("Conv2D")}, pool_activations={"conv": output})
    writer.close()
    maxima = [output.reshape(30, -1, 3).max(axis=1) for output in outputs]
    best = reader.load(str(tmp_path))["feature_maps"].strongest["conv"]
    assert np.array_equal(best.responses[0], maxima[0].astype(np.float16).astype(np.float32), equal_nan=True)
    assert np.isnan(best.responses[0][4, 1]) and np.isfinite(best.responses[0][4, 0])
    assert np.array_equal(best.responses[1], maxima[1]) and np.array_equal(best.responses[2], maxima[2])
    dtypes = [
        tensor_util.make_ndarray(value.tensor).dtype
        for path in glob.glob(f"{writer.run_dir}/events.out.tfevents.*")
        for event in event_file_loader.EventFileLoader(path).Load()
        for value in event.summary.value
        if value.tag == "responses/conv"
    ]
    assert dtypes == [np.float16, np.float32, np.float32]
    assert responses_kind.stored(np.zeros((3, 2))).dtype == np.float16
    assert responses_kind.stored(np.full((3, 2), responses_kind.HALF_LARGEST)).dtype == np.float16
    assert best.selectivity(0, ["x"] * 15 + ["y"] * 15).index.shape == (3,)


def test_a_log_without_responses_says_so(tmp_path):
    """A log of an earlier version (no responses series) reads as before; asking for its convergence names the cause."""
    from pathlib import Path

    from tb_featuremaps import FeatureMapsWriter, reader
    from tb_featuremaps.format import eventfile
    from tb_featuremaps.format.eventfile import EventFile
    from tb_featuremaps.writer import LayerDescription

    rng = np.random.default_rng(6)
    pool = rng.uniform(0, 1, (10, 8, 8, 1)).astype(np.float32)
    output = rng.uniform(0, 1, (10, 4, 4, 3)).astype(np.float32)
    with FeatureMapsWriter(tmp_path, pool[:2], pool=pool, top_k=2, write_images=False) as writer:
        writer.write(0, {"conv": output[:2]}, layers={"conv": LayerDescription("Conv2D")}, pool_activations={"conv": output})
    (path,) = Path(writer.run_dir).glob("events.out.tfevents.*")
    events = list(eventfile.read_events(str(path)))
    path.unlink()
    file = EventFile(writer.run_dir)
    for event in events[1:]:  # the new file writes its own first event
        kept = [value for value in event.summary.value if not value.tag.startswith("responses/")]
        del event.summary.value[:]
        event.summary.value.extend(kept)
        file.add(event)
    file.close()
    run = reader.load(str(tmp_path))["feature_maps"]
    best = run.strongest["conv"]
    assert best.responses is None and best.inputs(0).shape == (3, 2)
    with pytest.raises(ValueError, match="no responses series"):
        best.similarity_to()
    with pytest.raises(ValueError, match="no class labels"):
        run.selectivity("conv")


def test_the_convergence_command_draws_and_prints_where_each_layer_settled(trained, tmp_path, capsys):
    import os

    from PIL import Image

    from tb_featuremaps.export import cli

    run, _, _, folder = trained
    output = tmp_path / "convergence.png"
    assert cli.main(["convergence", os.path.dirname(folder), "--layer", "conv1", "-o", str(output)]) == 0
    printed = capsys.readouterr().out.splitlines()
    expected = []
    for layer in LAYERS:
        settled = run.strongest[layer].settled_step()
        expected.append(f"{layer}: settled at step {settled}" if settled is not None else f"{layer}: not settled")
    assert printed == expected
    with Image.open(output) as picture:
        assert picture.size[0] > 1000 and picture.size[1] > 400
    assert cli.main(["convergence", os.path.dirname(folder), "--layers", "conv1,nope", "-o", str(output)]) == 2
    assert "layer 'nope' of run 'feature_maps' has no responses" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: "expected a number in (0, 1]"
        cli.main(["convergence", os.path.dirname(folder), "--threshold", "0", "-o", str(output)])
    assert "expected a number in (0, 1], got 0" in capsys.readouterr().err


def test_the_convergence_command_without_a_pool_names_pool(tmp_path, capsys):
    from tb_featuremaps import FeatureMapsWriter
    from tb_featuremaps.export import cli

    with FeatureMapsWriter(tmp_path, np.zeros((2, 8, 8, 1), np.float32)) as writer:
        writer.write(0, {"conv": np.ones((2, 4, 4, 3), np.float32)})
    assert cli.main(["convergence", str(tmp_path), "-o", str(tmp_path / "c.png")]) == 2
    assert "has no responses to a pool: log it with pool=" in capsys.readouterr().err


def test_topk_overlap_of_a_logged_layer_is_the_jaccard_of_its_sets(trained):
    run, _, _, _ = trained
    best = run.strongest["conv2"]
    assert np.isnan(best.overlap(0)).all()
    for position in range(1, len(best.steps)):
        before, now = best.inputs(position - 1), best.inputs(position)
        expected = [len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in zip(before.tolist(), now.tolist())]
        assert np.allclose(best.overlap(position), expected)
