"""A disk that fills up part-way through a write and is freed again: later steps stay readable, by us and by TensorBoard."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from helpers.logs import LABELS, write_layer_step, write_probes_by_hand
from helpers.models import train_logdir
from helpers.plugin import tensorboard_steps

from tb_featuremaps import reader, render
from tb_featuremaps.format import eventfile
from tb_featuremaps.writer import writer as writer_module
from tb_featuremaps.writer.summary import SummaryWriter

LAYERS = ("conv", "dense")


class FullDisk:
    """Makes the ``fail_at``-th write to an event file under ``directory`` stop part-way, as a full disk does.

    That ``os.write`` puts half of its bytes in the file and returns; the next
    one raises ``ENOSPC``; later writes succeed again (space was freed). With
    ``stuck=True`` the file cannot be truncated either (``ftruncate`` fails).
    """

    def __init__(self, monkeypatch, directory, fail_at: int, stuck: bool = False):
        self.directory, self.writes, self.fail_at, self.short = directory, 0, fail_at, False
        write, ftruncate = os.write, os.ftruncate

        def full_write(fd: int, data) -> int:
            if not self._is_event_file(fd):
                return write(fd, data)
            if self.short:
                self.short = False
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.writes += 1
            if self.writes == self.fail_at:
                self.short = True
                return write(fd, data[: len(data) // 2])
            return write(fd, data)

        def stuck_ftruncate(fd: int, length: int) -> None:
            if self._is_event_file(fd):
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            ftruncate(fd, length)

        monkeypatch.setattr(os, "write", full_write)
        if stuck:
            monkeypatch.setattr(os, "ftruncate", stuck_ftruncate)

    def _is_event_file(self, fd: int) -> bool:
        return any(os.path.samestat(os.fstat(fd), os.stat(path)) for path in self.directory.rglob("events.out.tfevents.*"))


def maps_at(step: int, layer: int) -> np.ndarray:
    return np.random.default_rng([step, layer]).normal(size=(2, 6, 6, 4)).astype(np.float32)


@pytest.mark.parametrize("stuck", [False, True], ids=["cut-back", "new-file"])
def test_a_step_that_could_not_be_written_is_lost_alone(tmp_path, monkeypatch, stuck):
    disk = FullDisk(monkeypatch, tmp_path, fail_at=3, stuck=stuck)  # the third flush: step 2
    writer = SummaryWriter(str(tmp_path))  # by hand: the test is of SummaryWriter.flush, which FeatureMapsWriter's warnings hide
    write_probes_by_hand(writer, 0, np.zeros((len(LABELS), 8, 8), np.uint8), LABELS)
    written = []
    for step in range(6):
        for index, layer in enumerate(LAYERS):
            write_layer_step(writer, step, layer, index, maps_at(step, index), LABELS)
        try:
            writer.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC and step == 2
        else:
            written.append(step)
    writer.close()
    assert disk.writes == 6 and written == [0, 1, 3, 4, 5]

    files = sorted(tmp_path.glob("events.out.tfevents.*"))
    assert len(files) == (2 if stuck else 1)
    if stuck:  # the new file starts as an event file and describes every series again
        events = list(eventfile.read_events(str(files[1])))
        assert events[0].file_version == "brain.Event:2"
        described = {value.tag for event in events for value in event.summary.value if value.metadata.plugin_data.plugin_name}
        assert {f"{kind}/{layer}" for kind in ("activations", "stats") for layer in LAYERS} <= described

    run = reader.load(str(tmp_path))["."]
    assert run.probe_labels == LABELS
    for index, layer in enumerate(LAYERS):
        log = run.layers[layer]
        steps = log.steps.tolist()
        if stuck:  # the failed step's records before the tear stay in the old file, whole
            assert set(written) <= set(steps) <= {*written, 2}
        else:
            assert steps == written
        for position, step in enumerate(steps):
            maps = maps_at(step, index)
            drawn = render.draw(maps)
            np.testing.assert_array_equal(log.stats[position], drawn.stats)
            assert log.pngs[position] == render.to_pngs(drawn, log.info.layout)
        for kind in ("activations", "stats"):
            assert tensorboard_steps(tmp_path, ".", f"{kind}/{layer}") == steps


def test_the_callback_loses_only_the_epoch_the_disk_was_full(tmp_path, monkeypatch):
    FullDisk(monkeypatch, tmp_path, fail_at=3)  # steps 0 and 1 are written, step 2 is not
    with pytest.warns(UserWarning, match="step 2"):
        train_logdir(tmp_path, epochs=4)
    run = reader.load(str(tmp_path))["feature_maps"]
    assert {layer: log.steps.tolist() for layer, log in run.layers.items()} == dict.fromkeys(["conv1", "pool1", "conv2", "pool2"], [0, 1, 3, 4])
    assert tensorboard_steps(tmp_path, "feature_maps", "activations/conv2") == [0, 1, 3, 4]


def test_a_step_that_fails_part_way_through_its_layers_is_not_written_in_part(tmp_path, monkeypatch):
    draw, calls = render.draw, []

    def failing_at_the_third_layer_of_step_1(values, *args):
        calls.append(1)
        if len(calls) == 6 + 3:  # step 0 draws 6 series (4 layers, 2 kernels); step 1 fails at its third
            raise MemoryError("out of memory")
        return draw(values, *args)

    monkeypatch.setattr(writer_module, "draw", failing_at_the_third_layer_of_step_1)
    with pytest.warns(UserWarning, match="could not log step 1: MemoryError"):
        train_logdir(tmp_path, epochs=2)
    run = reader.load(str(tmp_path))["feature_maps"]
    assert {layer: log.steps.tolist() for layer, log in run.layers.items()} == dict.fromkeys(["conv1", "pool1", "conv2", "pool2"], [0, 2])
    assert tensorboard_steps(tmp_path, "feature_maps", "activations/conv1") == [0, 2]


def test_a_read_only_file_system_warns_once_though_each_step_names_a_new_file(tmp_path, monkeypatch):
    """As root, chmod does not stop writes: opening an event file fails as on a read-only mount (EROFS), naming the file."""
    real_open = os.open

    def read_only_open(path, flags, *args, **kwargs):
        if "events.out.tfevents." in os.fspath(path) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_open)
    writer = writer_module.FeatureMapsWriter(tmp_path, np.zeros((2, 6, 6, 1), np.float32), LABELS, background=False, write_images=False)
    with pytest.warns(UserWarning) as caught:
        for step in range(50):
            assert not writer.write(step, {"conv": maps_at(step, 0)})
        writer.close()
    messages = [str(warning.message) for warning in caught]
    assert len(messages) == 2, messages  # the first failure, and the count at close
    assert "could not log step 0: OSError: [Errno 30]" in messages[0] and "events.out.tfevents." in messages[0]
    assert messages[1].startswith("FeatureMapsWriter could not log 50 steps (0, 1, 2,")
