"""Reading ahead: after a listing, the newest runs' series are read in the background so that a layer's first
request finds them cached; a listing older than ``FRESH_SECONDS`` answers while a new one is made.

These use the Python loader's data provider in process, wrapped to count, hold or fail its reads.
"""

from __future__ import annotations

import threading
import time

import pytest
from helpers.logs import write_log, write_pool_run
from helpers.plugin import multiplexer_for
from tensorboard import context as tb_context
from tensorboard import errors
from tensorboard.backend.event_processing import data_provider

from tb_featuremaps.format import metadata
from tb_featuremaps.plugin import catalog, series
from tb_featuremaps.plugin.catalog import Catalog
from tb_featuremaps.plugin.series import ALL_STEPS, SeriesReader, SingleFlight, Timeline

LAYERS = ("conv1", "conv2", "conv3")
STEPS = range(6)
CTX = tb_context.RequestContext()
WAIT = 30.0


class Provider:
    """A data provider that counts its reads by (method, run, tag) and whether they ran in the background, and can
    hold (``gate``) or fail (``fail``) the reads made in the background."""

    def __init__(self, inner):
        self._inner = inner
        self.reads: list[tuple[str, str, str, bool]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.holding = threading.Event()
        self.fail = False
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _read(self, method: str, ctx, **kwargs):
        run_filter = kwargs["run_tag_filter"]
        background = threading.current_thread().name.startswith("feature_maps_background")
        with self._lock:
            for run in run_filter.runs:
                for tag in run_filter.tags:
                    self.reads.append((method, run, tag, background))
        if background:
            self.holding.set()
            self.gate.wait(WAIT)
            if self.fail:
                raise RuntimeError("a read ahead that fails")
        return getattr(self._inner, method)(ctx, **kwargs)

    def read_blob_sequences(self, ctx, **kwargs):
        return self._read("read_blob_sequences", ctx, **kwargs)

    def read_tensors(self, ctx, **kwargs):
        return self._read("read_tensors", ctx, **kwargs)

    def count(self, method: str, run: str, tag: str) -> int:
        with self._lock:
            return sum(1 for read in self.reads if read[:3] == (method, run, tag))


def reader_and_catalog(logdir, prewarm: bool = True) -> tuple[Provider, SeriesReader, Catalog]:
    provider = Provider(data_provider.MultiplexerDataProvider(multiplexer_for(logdir), str(logdir)))
    reader = SeriesReader(provider, ALL_STEPS)
    return provider, reader, Catalog(reader, prewarm=prewarm)


def list_twice(cat: Catalog) -> dict:
    """Lists the runs twice (as a polling panel does): the second listing reads ahead what the first showed unchanged."""
    cat._relist(CTX, "")
    return cat._relist(CTX, "")


def settle(cat: Catalog) -> None:
    """Waits until no series is read ahead and no listing is made in the background."""
    deadline = time.monotonic() + WAIT
    while cat._warming or cat._refreshing or cat._reader._flights.reading():
        assert time.monotonic() < deadline, "reading ahead never finished"
        time.sleep(0.01)


def answers(reader: SeriesReader, cat: Catalog, runs: list[str]) -> dict:
    """What the routes answer from the reader: the listing, every layer's timeline, keys, stats and change."""
    result = {"runs": cat.runs(CTX, "")}
    for run in runs:
        for layer in LAYERS:
            tag = metadata.tag_for(metadata.KIND_ACTIVATIONS, layer)
            try:
                timeline = reader.timeline(CTX, "", run, tag)
            except errors.NotFoundError:
                continue
            stats = reader.stats(CTX, "", run, layer)
            result[run, layer] = (
                timeline.steps.tolist(),
                timeline.wall_times.tolist(),
                [reader.keys_at(CTX, "", run, tag, step) for step in STEPS],
                stats.steps,
                stats.values.tolist(),
            )
    return result


@pytest.fixture
def logdir(tmp_path):
    for index in range(3):
        write_log(tmp_path / f"run{index}", layers=LAYERS, steps=STEPS, probes=2)
    return tmp_path


def test_the_answers_are_the_same_with_and_without_reading_ahead(logdir):
    _, cold_reader, cold = reader_and_catalog(logdir, prewarm=False)
    provider, warm_reader, warm = reader_and_catalog(logdir)
    list_twice(warm)
    settle(warm)
    assert any(read[3] for read in provider.reads), "nothing was read ahead"
    runs = ["run0", "run1", "run2"]
    assert answers(warm_reader, warm, runs) == answers(cold_reader, cold, runs)


def test_a_layers_first_request_finds_its_series_read(logdir):
    provider, reader, cat = reader_and_catalog(logdir)
    list_twice(cat)
    settle(cat)
    before = len(provider.reads)
    for layer in LAYERS:
        reader.timeline(CTX, "", "run2", metadata.tag_for(metadata.KIND_ACTIVATIONS, layer))
        reader.stats(CTX, "", "run2", layer)
        reader.stats_at(CTX, "", "run2", layer, 3)
    assert provider.reads[before:] == []


def test_a_request_waits_for_the_read_ahead_of_its_series_instead_of_reading_it_again(logdir):
    provider, reader, cat = reader_and_catalog(logdir)
    provider.gate.clear()
    list_twice(cat)  # never waits for the held reads
    assert provider.holding.wait(WAIT)
    held = next(read for read in provider.reads if read[3])
    method, run, tag, _ = held
    layer = tag.rsplit("/", 1)[-1]
    got = []
    if method == "read_tensors":
        request = threading.Thread(target=lambda: got.append(reader.stats(CTX, "", run, layer).values.tolist()))
    else:
        request = threading.Thread(target=lambda: got.append(reader.timeline(CTX, "", run, tag).steps.tolist()))
    request.start()
    time.sleep(0.2)
    assert not got, "the request did not wait for the read in flight"
    provider.gate.set()
    request.join(WAIT)
    settle(cat)
    assert got and provider.count(method, run, tag) == 1


def test_a_failed_read_ahead_never_fails_a_request(logdir):
    provider, reader, cat = reader_and_catalog(logdir)
    _, cold_reader, cold = reader_and_catalog(logdir, prewarm=False)
    provider.fail = True
    provider.gate.clear()
    list_twice(cat)
    assert provider.holding.wait(WAIT)
    method, run, tag, _ = next(read for read in provider.reads if read[3])
    layer = tag.rsplit("/", 1)[-1]
    waiting = []
    request = threading.Thread(target=lambda: waiting.append(reader.stats(CTX, "", run, layer)))
    request.start()  # waits on the held read, which then fails
    time.sleep(0.1)
    provider.gate.set()
    request.join(WAIT)
    settle(cat)
    assert waiting and waiting[0].values.tolist() == cold_reader.stats(CTX, "", run, layer).values.tolist()
    assert answers(reader, cat, ["run0", "run1", "run2"]) == answers(cold_reader, cold, ["run0", "run1", "run2"])


def test_reading_ahead_stays_within_the_budget_and_never_evicts(logdir, monkeypatch):
    _, reader, _ = reader_and_catalog(logdir, prewarm=False)
    one = reader.stats(CTX, "", "run0", "conv1").values.nbytes
    monkeypatch.setattr(series, "STATS_BUDGET", int(2.5 * one))
    provider, reader, cat = reader_and_catalog(logdir)
    kept = reader.stats(CTX, "", "run0", "conv1")  # a request's, before the listing
    list_twice(cat)
    settle(cat)
    assert reader._stats.used <= int(2.5 * one)
    assert reader._stats.get(("", "run0", metadata.tag_for(metadata.KIND_STATS, "conv1"))) is kept
    ahead = [(run, tag) for method, run, tag, background in provider.reads if background and method == "read_tensors"]
    cached = [reader._stats.get(("", run, tag)) is not None for run, tag in ahead]
    assert cached[-1] is False and all(cached[:-1]), ahead  # the round stops at the first read that does not fit


def test_only_the_newest_runs_are_read_ahead(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "PREWARM_RUNS", 2)
    for index in range(5):
        write_log(tmp_path / f"run{index}", layers=LAYERS, steps=STEPS, probes=1)
        time.sleep(0.05)  # later runs end later
    provider, _, cat = reader_and_catalog(tmp_path)
    assert len(list_twice(cat)["runs"]) == 5
    settle(cat)
    assert {read[1] for read in provider.reads if read[3]} == {"run3", "run4"}


def test_a_series_that_changed_since_the_listing_before_is_not_read_ahead(tmp_path):
    write_log(tmp_path / "run", layers=LAYERS, steps=range(3), probes=1)
    multiplexer = multiplexer_for(tmp_path)
    provider = Provider(data_provider.MultiplexerDataProvider(multiplexer, str(tmp_path)))
    cat = Catalog(SeriesReader(provider, ALL_STEPS))
    cat._relist(CTX, "")
    settle(cat)
    assert not any(read[3] for read in provider.reads)  # nothing to compare with yet
    write_log(tmp_path / "run", layers=LAYERS, steps=range(3, 5), probes=1, resume=True)
    multiplexer.Reload()
    cat._relist(CTX, "")
    settle(cat)
    assert not any(read[3] for read in provider.reads)  # every series grew
    cat._relist(CTX, "")
    settle(cat)
    assert any(read[3] for read in provider.reads)


def test_the_change_series_is_read_ahead_too(tmp_path):
    write_pool_run(tmp_path / "run", range(3))
    provider, reader, cat = reader_and_catalog(tmp_path)
    list_twice(cat)
    settle(cat)
    before = len(provider.reads)
    reader.stats(CTX, "", "run", "conv", metadata.KIND_CHANGE)
    assert provider.reads[before:] == []


def test_an_older_listing_answers_while_a_new_one_is_made(logdir, monkeypatch):
    provider, _, cat = reader_and_catalog(logdir, prewarm=False)
    first = cat.runs(CTX, "")
    monkeypatch.setattr(catalog, "FRESH_SECONDS", 0.0)
    monkeypatch.setattr(catalog, "LISTING_SHARE", 0.0)
    listed = threading.Event()
    relist = Catalog._relist

    def counted(self, ctx, eid):
        listing = relist(self, ctx, eid)
        listed.set()
        return listing

    monkeypatch.setattr(Catalog, "_relist", counted)
    assert cat.runs(CTX, "") is first  # at once, the listing before
    assert listed.wait(WAIT)
    settle(cat)
    assert cat.runs(CTX, "") is not first  # the new one (and a new one is begun)
    monkeypatch.setattr(catalog, "STALE_SECONDS", 0.0)
    listed.clear()
    assert cat.runs(CTX, "") == first and listed.is_set()  # too old: listed before the answer


def test_single_flight_shares_one_read_and_rereads_after_a_failure():
    flights = SingleFlight()
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow():
        calls.append("slow")
        started.set()
        release.wait(WAIT)
        return 1

    results = []
    owner = threading.Thread(target=lambda: results.append(flights.run("key", slow)))
    owner.start()
    assert started.wait(WAIT)
    waiter = threading.Thread(target=lambda: results.append(flights.run("key", lambda: calls.append("second") or 2)))
    waiter.start()
    time.sleep(0.1)
    release.set()
    owner.join(WAIT)
    waiter.join(WAIT)
    assert results == [1, 1] and calls == ["slow"] and flights.reading() == 0

    started.clear()
    release.clear()

    def failing():
        started.set()
        release.wait(WAIT)
        raise RuntimeError("failed")

    failures = []
    owner = threading.Thread(target=lambda: failures.append(pytest.raises(RuntimeError, flights.run, "key", failing)))
    owner.start()
    assert started.wait(WAIT)
    waiter = threading.Thread(target=lambda: results.append(flights.run("key", lambda: 3)))
    waiter.start()
    time.sleep(0.1)
    release.set()
    owner.join(WAIT)
    waiter.join(WAIT)
    assert failures and results[-1] == 3


def test_a_timeline_gives_back_the_keys_it_was_made_of():
    keys = [[f"prefix-{step}-{index}" for index in range(3)] for step in range(4)] + [[]]
    timeline = Timeline.of((4, 1.0), range(5), [0.5 * step for step in range(5)], keys)
    assert [timeline.keys_at(step) for step in range(5)] == [tuple(step_keys) for step_keys in keys]
    assert timeline.keys_at(7) is None and timeline.last_keys() == ()
    assert timeline.prefix == "prefix-"
    assert Timeline.of((None, None), [], [], []).last_keys() == ()
    assert timeline.cost > sum(len(key) for step_keys in keys for key in step_keys)


def test_a_slow_listing_answers_for_longer(logdir, monkeypatch):
    _, _, cat = reader_and_catalog(logdir, prewarm=False)
    first = cat.runs(CTX, "")
    monkeypatch.setattr(catalog, "FRESH_SECONDS", 0.0)
    monkeypatch.setattr(catalog, "LISTING_SHARE", 1e9)  # as if listing took most of the time
    refreshed = []
    monkeypatch.setattr(Catalog, "_refresh", lambda *args: refreshed.append(args))
    assert cat.runs(CTX, "") is first and not refreshed
    monkeypatch.setattr(catalog, "LONGEST_FRESH_SECONDS", 0.0)  # but never for longer than this
    assert cat.runs(CTX, "") is first and refreshed


def test_a_listing_of_no_runs_is_listed_again_before_the_answer(tmp_path, monkeypatch):
    multiplexer = multiplexer_for(tmp_path)
    cat = Catalog(SeriesReader(data_provider.MultiplexerDataProvider(multiplexer, str(tmp_path)), ALL_STEPS), prewarm=False)
    assert cat.runs(CTX, "")["runs"] == []
    write_log(tmp_path / "run", layers=LAYERS, steps=STEPS, probes=1)
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    multiplexer.Reload()
    monkeypatch.setattr(catalog, "FRESH_SECONDS", 0.0)
    assert [run["run"] for run in cat.runs(CTX, "")["runs"]] == ["run"]  # at once, not from the background
