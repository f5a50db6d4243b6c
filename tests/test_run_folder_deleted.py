"""The run folder deleted while logging: the writer warns once, starts a new event file with the run's metadata, and goes on."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tb_featuremaps import FeatureMapsWriter, reader

PROBES = np.zeros((2, 8, 8, 1), np.float32)
POOL = np.random.default_rng(0).normal(size=(5, 8, 8, 1)).astype(np.float32)


def maps(step: int, count: int = 2) -> np.ndarray:
    return np.random.default_rng(step).normal(size=(count, 6, 6, 4)).astype(np.float32)


@pytest.mark.parametrize("background", [False, True])
def test_steps_after_the_run_folder_is_deleted_are_written_to_a_new_event_file(tmp_path, background):
    writer = FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], write_images=False, background=background, pool=POOL)
    assert writer.write(0, {"conv": maps(0)}, pool_activations={"conv": maps(100, 5)})
    writer.flush()
    shutil.rmtree(writer.run_dir)
    with pytest.warns(UserWarning, match=r"the run folder .* was deleted while logging; starting a new event file") as caught:
        for step in (1, 2, 3):
            assert writer.write(step, {"conv": maps(step)}, pool_activations={"conv": maps(100 + step, 5)})
        writer.flush()
    assert sum("was deleted while logging" in str(warning.message) for warning in caught) == 1
    writer.close()
    run = reader.load(tmp_path)["feature_maps"]
    assert run.layers["conv"].steps.tolist() == [1, 2, 3]
    assert run.probe_labels == ["a", "b"] and len(run.probe_images) == 2
    assert run.pool is not None and len(run.pool.labels) == 5
    assert run.strongest["conv"].steps.tolist() == [1, 2, 3]


def test_a_second_deletion_is_recovered_from_too(tmp_path):
    writer = FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], write_images=False, background=False)
    writer.write(0, {"conv": maps(0)})
    shutil.rmtree(writer.run_dir)
    with pytest.warns(UserWarning, match="was deleted while logging"):
        writer.write(1, {"conv": maps(1)})
    shutil.rmtree(writer.run_dir)
    writer.write(2, {"conv": maps(2)})
    writer.close()
    assert reader.load(tmp_path)["feature_maps"].layers["conv"].steps.tolist() == [2]


def test_a_keras_run_whose_folder_is_deleted_mid_fit_keeps_the_later_epochs(tmp_path):
    import keras
    from helpers.models import fit, small_cnn

    from tb_featuremaps import FeatureMapsCallback

    callback = FeatureMapsCallback(str(tmp_path), layers=["conv1"])

    class DeleteRunFolder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                callback.logger.writer.flush()
                shutil.rmtree(callback.run_dir)

    with pytest.warns(UserWarning, match="was deleted while logging"):
        fit(small_cnn(), [callback, DeleteRunFolder()], epochs=6, samples=32)
    run = reader.load(tmp_path)["feature_maps"]
    assert run.layers["conv1"].steps.tolist() == [4, 5, 6]
    assert len(run.probe_labels) == 10
