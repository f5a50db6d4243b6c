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
