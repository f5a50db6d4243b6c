"""The convergence routes (``convergence``, ``similarity``, ``selectivity``, ``filter_selectivity``) over real event files.

The log is written through ``FeatureMapsWriter`` with a labelled pool, with crafted pool maps so that each
layer's responses are known; every answer must equal the format's own math (``format.convergence``) on the
responses and top-k the reader reads back. The crafted pool gives a filter that responds to one class only
(index 1) and one that responds to all alike (index 0).
"""

from __future__ import annotations

import json
import urllib.parse

import numpy as np
import pytest
from helpers.logs import write_log, write_responses_run
from helpers.plugin import assert_refused, finite, get_json, make_client
from helpers.tensorboard import each_loader, fetch, fetch_json, poll

from tb_featuremaps import reader
from tb_featuremaps.format import convergence
from tb_featuremaps.plugin import convergence as routes

RUN = "run"
STEPS = [0, 2, 4, 6, 8, 10]
LABELS = ["a", "b", "c", "a", "b", "c", "a", "b", "c", "a", "b", "c"]
POOL = len(LABELS)
FILTERS = 4
TOP_K = 3


def layer_responses(seed: int, settle_at: int) -> np.ndarray:
    """[S, N, F]: a fixed pattern plus noise that vanishes from step position ``settle_at`` on (the layer settles there)."""
    rng = np.random.default_rng(seed)
    final = rng.random((POOL, FILTERS)) + 0.1
    final[:, 0] = [2.0 if label == "a" else 0.0 for label in LABELS]  # filter 0 answers class a only: index 1
    final[:, 1] = 1.0  # filter 1 answers every class alike: index 0
    noise = [rng.normal(size=(POOL, FILTERS)) * (position < settle_at) for position in range(len(STEPS))]
    return np.stack([final + 3 * n for n in noise]).astype(np.float32)


RESPONSES = {"conv1": layer_responses(1, 2), "conv2": layer_responses(2, 4), "dense": layer_responses(3, 5)}


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("convergence")
    write_responses_run(logdir / RUN, STEPS, RESPONSES, LABELS, top_k=TOP_K)
    write_responses_run(logdir / "unlabelled", STEPS[:2], {"conv1": RESPONSES["conv1"][:2, :6]}, ["x"] * 6)
    write_log(logdir / "plain")  # no pool: no responses
    return logdir


@pytest.fixture(scope="module")
def logged(logdir) -> reader.RunLog:
    """The run as the reader reads it back."""
    return reader.load(logdir, RUN)[RUN]


def stored(logged: reader.RunLog, layer: str) -> np.ndarray:
    """The layer's responses as the log holds them (float16), read back."""
    responses = logged.strongest[layer].responses
    np.testing.assert_allclose(responses, RESPONSES[layer], rtol=1e-3)  # the crafted values, to float16's precision
    return responses


@pytest.fixture(scope="module")
def client(logdir):
    return make_client(logdir)


def test_the_runs_listing_says_which_layers_have_responses(client):
    runs = {run["run"]: run for run in get_json(client, "runs")["runs"]}
    assert [layer["has_responses"] for layer in runs[RUN]["layers"]] == [True] * len(RESPONSES)
    assert [layer["has_responses"] for layer in runs["plain"]["layers"]] == [False]
    assert_refused(client, "convergence", {"run": "plain"}, 404)


def test_convergence_is_each_layers_cka_to_its_latest_step_and_where_it_settled(client, logged):
    answer = get_json(client, "convergence", run=RUN)
    assert answer["threshold"] == convergence.SETTLED_THRESHOLD
    assert [layer["layer"] for layer in answer["layers"]] == list(RESPONSES)  # model order
    for entry in answer["layers"]:
        expected = convergence.cka_to(stored(logged, entry["layer"]))
        assert entry["steps"] == STEPS and entry["step_unit"] == "epoch"
        np.testing.assert_allclose(finite(entry["cka"]), expected, rtol=1e-12)
        assert entry["settled"] == convergence.settled_step(expected, np.array(STEPS), convergence.SETTLED_THRESHOLD)
    assert [entry["settled"] for entry in answer["layers"]] == [4, 8, 10]  # the noise ends at positions 2, 4 and 5


def test_convergence_threshold_changes_the_settled_step(client, logged):
    loose = get_json(client, "convergence", run=RUN, threshold="0.05")
    for entry in loose["layers"]:
        assert entry["settled"] == convergence.settled_step(convergence.cka_to(stored(logged, entry["layer"])), np.array(STEPS), 0.05)
    assert loose["threshold"] == 0.05
    assert [entry["settled"] for entry in loose["layers"]] != [4, 8, 10]


def test_similarity_is_the_cka_matrix(client, logged):
    answer = get_json(client, "similarity", run=RUN, layer="conv2")
    assert answer["steps"] == STEPS and answer["step_count"] == len(STEPS) and answer["subsampled"] is False
    np.testing.assert_allclose(finite(answer["values"]), convergence.cka_matrix(stored(logged, "conv2")), rtol=1e-12)
    np.testing.assert_allclose(np.diag(finite(answer["values"])), 1.0)


def test_similarity_of_a_long_layer_is_subsampled_evenly_and_says_so(logdir, monkeypatch, logged):
    monkeypatch.setattr(routes, "MAX_MAP_STEPS", 4)
    answer = get_json(make_client(logdir), "similarity", run=RUN, layer="conv1")
    assert answer["subsampled"] is True and answer["step_count"] == len(STEPS)
    assert answer["steps"][0] == STEPS[0] and answer["steps"][-1] == STEPS[-1] and len(answer["steps"]) == 4
    positions = [STEPS.index(step) for step in answer["steps"]]
    np.testing.assert_allclose(finite(answer["values"]), convergence.cka_matrix(stored(logged, "conv1")[positions]), rtol=1e-12)


@pytest.mark.parametrize("step", [0, 6])
def test_selectivity_is_the_class_means_and_index_at_the_step(client, step, logged):
    answer = get_json(client, "selectivity", run=RUN, layer="conv1", step=step)
    classes, means = convergence.class_means(stored(logged, "conv1")[STEPS.index(step)], np.array(LABELS))
    preferred, index = convergence.selectivity(means)
    assert answer["step"] == step and answer["classes"] == list(classes) == ["a", "b", "c"]
    np.testing.assert_allclose(finite(answer["means"]), means.T, rtol=1e-12)
    assert answer["preferred"] == preferred.tolist()
    np.testing.assert_allclose(finite(answer["index"]), index, rtol=1e-12)


def test_a_filter_answering_one_class_only_has_index_1_and_one_answering_all_alike_0(client):
    answer = get_json(client, "selectivity", run=RUN, layer="conv1", step=STEPS[-1])
    assert answer["index"][0] == 1.0 and answer["classes"][answer["preferred"][0]] == "a"
    assert answer["index"][1] == pytest.approx(0.0, abs=1e-12)


def test_overlap_is_the_jaccard_of_consecutive_top_k(client, logged):
    best = logged.strongest["conv1"]
    answer = get_json(client, "filter_selectivity", run=RUN, layer="conv1", filter=2)
    assert answer["steps"] == STEPS and answer["filter"] == 2
    overlap = finite(answer["overlap"])
    assert np.isnan(overlap[0])  # the first step has nothing to compare with
    expected = [convergence.topk_overlap(best.inputs(position - 1), best.inputs(position))[2] for position in range(1, len(STEPS))]
    np.testing.assert_allclose(overlap[1:], expected)
    assert len(set(expected)) > 1  # the top-k of the noisy steps move, those of the settled ones do not
    at = get_json(client, "selectivity", run=RUN, layer="conv1", step=STEPS[3])
    np.testing.assert_allclose(finite(at["overlap"]), convergence.topk_overlap(best.inputs(2), best.inputs(3)))


def test_filter_selectivity_is_the_filters_column_at_every_step(client, logged):
    answer = get_json(client, "filter_selectivity", run=RUN, layer="conv2", filter=3)
    for position in range(len(STEPS)):
        classes, means = convergence.class_means(stored(logged, "conv2")[position], np.array(LABELS))
        preferred, index = convergence.selectivity(means)
        np.testing.assert_allclose(finite(answer["means"][position]), means[:, 3], rtol=1e-12)
        assert answer["preferred"][position] == preferred[3]
        assert finite([answer["index"][position]])[0] == pytest.approx(index[3], rel=1e-12)
    assert answer["classes"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("route", "query", "status"),
    [
        ("convergence", {}, 400),
        ("convergence", {"run": RUN, "threshold": "abc"}, 400),
        ("convergence", {"run": RUN, "threshold": "1.5"}, 400),
        ("convergence", {"run": RUN, "threshold": "0"}, 400),
        ("convergence", {"run": RUN, "threshold": "-0.5"}, 400),
        ("convergence", {"run": "nope"}, 404),
        ("similarity", {"run": RUN}, 400),
        ("similarity", {"run": RUN, "layer": "nope"}, 404),
        ("similarity", {"run": "nope", "layer": "conv1"}, 404),
        ("selectivity", {"run": RUN, "layer": "conv1"}, 400),
        ("selectivity", {"run": RUN, "layer": "conv1", "step": "x"}, 400),
        ("selectivity", {"run": RUN, "layer": "conv1", "step": "1"}, 404),
        ("selectivity", {"run": RUN, "layer": "nope", "step": "0"}, 404),
        ("filter_selectivity", {"run": RUN, "layer": "conv1", "filter": str(FILTERS)}, 404),
        ("filter_selectivity", {"run": RUN, "layer": "conv1", "filter": "-1"}, 400),
    ],
)
def test_bad_parameters_are_400_or_404_with_a_short_reason(client, route, query, status):
    assert_refused(client, route, query, status)


def test_a_pool_whose_labels_are_not_classes_has_no_selectivity_but_has_convergence(client):
    """One label for every input is no classes (``convergence.labels_are_classes``): 404 with the reason, as the reader refuses it."""
    assert_refused(client, "selectivity", {"run": "unlabelled", "layer": "conv1", "step": "0"}, 404)
    assert_refused(client, "filter_selectivity", {"run": "unlabelled", "layer": "conv1", "filter": "0"}, 404)
    assert get_json(client, "convergence", run="unlabelled")["layers"][0]["layer"] == "conv1"


def test_both_loaders_serve_the_same_answers(logdir, client):
    paths = [
        ("convergence", {"run": RUN}),
        ("similarity", {"run": RUN, "layer": "conv1"}),
        ("selectivity", {"run": RUN, "layer": "conv1", "step": 4}),
        ("filter_selectivity", {"run": RUN, "layer": "conv2", "filter": 0}),
    ]
    with each_loader(logdir) as servers:
        for base in servers.values():
            poll(lambda base=base: fetch(f"{base}/data/plugin/feature_maps/convergence?run={RUN}")[0] == 200, "the responses to load")
            for route, query in paths:
                served = fetch_json(f"{base}/data/plugin/feature_maps/{route}?{urllib.parse.urlencode(query)}")
                assert json.dumps(served, sort_keys=True) == json.dumps(get_json(client, route, **query), sort_keys=True), route
