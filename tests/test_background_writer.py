"""The background worker: steps are drawn and written in order off the caller's thread, bounded, flushed, failures still warned."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from tb_featuremaps import FeatureMapsWriter, reader
from tb_featuremaps.format import metadata
from tb_featuremaps.writer import writer as writer_module

MEAN = metadata.STATS_FIELDS.index("mean")
PROBES = np.zeros((2, 8, 8, 1), np.float32)


def maps(step: int) -> np.ndarray:
    return np.random.default_rng(step).normal(size=(2, 6, 6, 4)).astype(np.float32)


class GatedTimer:
    """A stage timer that holds the worker at its ``png`` stages until :meth:`open`."""

    def __init__(self):
        self.gate, self.started = threading.Event(), threading.Event()

    def __call__(self, stage: str, seconds: float) -> None:
        if stage == "png":
            self.started.set()
            assert self.gate.wait(30), "the test never opened the gate"

    def open(self) -> None:
        self.gate.set()


def test_steps_are_written_in_order_and_read_back_after_close(tmp_path):
    with FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], write_images=False) as writer:
        for step in range(6):
            assert writer.write(step, {"conv": maps(step)})
        assert writer.last_step == 5
    conv = reader.load(tmp_path)["feature_maps"].layers["conv"]
    assert conv.steps.tolist() == list(range(6))
    for position, step in enumerate(range(6)):
        expected = maps(step)[1, :, :, 2]
        assert conv.stats[position, 1, 2, MEAN] == pytest.approx(expected.mean(), rel=1e-5)


def test_a_full_queue_makes_the_caller_wait_instead_of_dropping_steps(tmp_path):
    timer = GatedTimer()
    writer = FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], write_images=False, timer=timer)
    writer.write(0, {"conv": maps(0)})
    assert timer.started.wait(30)  # the worker holds step 0; the queue takes QUEUE_SIZE more
    for step in range(1, writer_module.QUEUE_SIZE + 1):
        writer.write(step, {"conv": maps(step)})
    blocked = threading.Thread(target=writer.write, args=(writer_module.QUEUE_SIZE + 1, {"conv": maps(9)}))
    blocked.start()
    blocked.join(0.5)
    assert blocked.is_alive(), "a write beyond the queue's size returned while the worker was busy"
    timer.open()
    blocked.join(30)
    assert not blocked.is_alive()
    writer.close()
    steps = reader.load(tmp_path)["feature_maps"].layers["conv"].steps.tolist()
    assert steps == list(range(writer_module.QUEUE_SIZE + 2))


def test_arrays_changed_after_write_do_not_change_the_kernel_logged(tmp_path):
    timer = GatedTimer()
    kernel = np.broadcast_to(np.arange(9, dtype=np.float32).reshape(3, 3, 1, 1), (3, 3, 1, 4)).copy()
    writer = FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], write_images=False, timer=timer)
    writer.write(0, {"conv": maps(0)}, kernels={"conv": kernel})
    kernel[...] = 5.0  # the optimizer updating the weights in place while the worker draws
    timer.open()
    writer.close()
    tiles = reader.load(tmp_path)["feature_maps"].weights["conv"].tiles(0)
    assert tiles.shape == (4, 3, 3)
    assert np.all(np.diff(tiles.reshape(4, 9).astype(int), axis=1) > 0)  # the kernel as written: a ramp, not the later constant


def test_a_failure_on_the_worker_warns_on_the_callers_thread_and_costs_only_its_step(tmp_path, monkeypatch):
    draw = writer_module.draw

    def failing_draw(values, *args):
        if np.isclose(values[0, 0, 0, 0], maps(2)[0, 0, 0, 0]):
            raise RuntimeError("drawing broke")
        return draw(values, *args)

    monkeypatch.setattr(writer_module, "draw", failing_draw)
    writer = FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], write_images=False)
    for step in range(4):
        writer.write(step, {"conv": maps(step)})
    with pytest.warns(UserWarning, match=r"could not log step 2: RuntimeError: drawing broke"):
        writer.flush()
    writer.close()
    assert reader.load(tmp_path)["feature_maps"].layers["conv"].steps.tolist() == [0, 1, 3]


def test_queued_steps_are_written_at_interpreter_exit_without_close(tmp_path):
    script = textwrap.dedent(
        f"""
        import time
        import numpy as np
        from tb_featuremaps import FeatureMapsWriter

        def slow(stage, seconds):
            if stage == "png":
                time.sleep(0.2)

        writer = FeatureMapsWriter({str(tmp_path)!r}, np.zeros((2, 8, 8, 1), np.float32), ["a", "b"], write_images=False, timer=slow)
        for step in range(3):
            writer.write(step, {{"conv": np.full((2, 6, 6, 4), step, np.float32)}})
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert reader.load(tmp_path)["feature_maps"].layers["conv"].steps.tolist() == [0, 1, 2]


def test_background_false_writes_before_write_returns(tmp_path):
    writer = FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], write_images=False, background=False)
    writer.write(0, {"conv": maps(0)})
    assert reader.load(tmp_path)["feature_maps"].layers["conv"].steps.tolist() == [0]
    writer.close()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_background_must_be_a_boolean(tmp_path, value):
    with pytest.raises(ValueError, match="background"):
        FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], background=value)


def test_a_killed_process_loses_at_most_the_steps_queued_and_the_rest_are_whole(tmp_path):
    """SIGKILL while the worker holds a step and the queue is full: what docs/format.md promises ("What a crash costs")."""
    script = textwrap.dedent(
        f"""
        import sys, threading
        import numpy as np
        from tb_featuremaps import FeatureMapsWriter

        held = threading.Event()

        def timer(stage, seconds):
            if stage == "png" and held.is_set():
                print("worker holds a step", flush=True)
                threading.Event().wait()  # the worker never finishes this step

        writer = FeatureMapsWriter({str(tmp_path)!r}, np.zeros((2, 8, 8, 1), np.float32), ["a", "b"], write_images=False, timer=timer)
        for step in range(100):
            assert writer.write(step, {{"conv": np.full((2, 6, 6, 4), step, np.float32)}})
            print("announced", step, flush=True)
            if step == 4:
                writer.flush()  # steps 0-4 written; the next one is held
                held.set()
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    announced, holding = [], False
    try:
        for line in child.stdout:  # the child blocks for good once the queue is full behind the held step
            if line.startswith("announced"):
                announced.append(int(line.split()[1]))
            holding = holding or line.startswith("worker holds")
            if holding and len(announced) == 5 + writer_module.QUEUE_SIZE + 1:
                break
    finally:
        child.kill()  # SIGKILL
        child.wait(60)
    assert holding and announced == list(range(5 + writer_module.QUEUE_SIZE + 1))
    conv = reader.load(tmp_path)["feature_maps"].layers["conv"]
    assert conv.steps.tolist() == [0, 1, 2, 3, 4]  # whole and readable: each step's stats are its values
    assert conv.stats[:, 0, 0, MEAN].tolist() == [0, 1, 2, 3, 4]
    lost = len(announced) - len(conv.steps)
    assert lost == writer_module.QUEUE_SIZE + 1
    promise = " ".join((pathlib.Path(__file__).parents[1] / "docs" / "format.md").read_text().split())
    assert f"`QUEUE_SIZE` = {writer_module.QUEUE_SIZE} steps" in promise and f"at most the last {lost} steps (`QUEUE_SIZE + 1`" in promise
