"""Steps stay unique and growing however ``fit`` is called, stopped, resumed or repeated."""

from __future__ import annotations

import functools

import keras
import pytest
from helpers.models import fit, mnist_digits, small_cnn

from tb_featuremaps import FeatureMapsCallback, reader

_fit = functools.partial(fit, epochs=2)  # two epochs of 64 digits, unless a test says otherwise


def _callback(logdir, **args) -> FeatureMapsCallback:
    """A callback logging one layer for two probes: what these tests check, at a fraction of the cost."""
    return FeatureMapsCallback(str(logdir), **{"probes": mnist_digits(2)[0], "layers": ["conv1"], **args})


def _steps(logdir, run: str = "feature_maps") -> dict[str, list[int]]:
    """Logged steps of every activations series of ``run``."""
    return {path: layer.steps.tolist() for path, layer in reader.load(str(logdir))[run].layers.items()}


def _events(logdir, run: str = "feature_maps") -> dict:
    return {path.name: path.read_bytes() for path in (logdir / run).glob("events.*")}


def test_fit_twice_continues_the_steps_and_keeps_the_first_file(tmp_path):
    model, callback = small_cnn(), _callback(tmp_path)
    _fit(model, [callback])
    first = _events(tmp_path)
    _fit(model, [callback])
    assert _steps(tmp_path) == {"conv1": [0, 1, 2, 3, 4]}
    after = _events(tmp_path)
    assert len(after) == 2 and all(after[name] == data for name, data in first.items())  # appended in a new file
    assert len(reader.load(str(tmp_path))["feature_maps"].probe_images) == 2


def test_resume_with_initial_epoch_in_a_new_callback(tmp_path):
    model = small_cnn()
    _fit(model, [_callback(tmp_path)], epochs=2)
    _fit(model, [_callback(tmp_path)], epochs=4, initial_epoch=2)  # as a restarted process would
    assert _steps(tmp_path)["conv1"] == [0, 1, 2, 3, 4]


def test_a_callback_reused_on_a_new_model_starts_a_new_run(tmp_path):
    callback = _callback(tmp_path)
    _fit(small_cnn(), [callback])
    with pytest.warns(UserWarning, match=r"used with a new model; it logs to .*feature_maps_2"):
        _fit(small_cnn(), [callback])
    assert _steps(tmp_path, "feature_maps") == _steps(tmp_path, "feature_maps_2") == {"conv1": [0, 1, 2]}


def test_two_callbacks_in_one_fit_need_distinct_run_names(tmp_path):
    model = small_cnn()
    same = [_callback(tmp_path), _callback(tmp_path, layers=["conv2"])]
    with pytest.raises(ValueError, match=r"two FeatureMapsCallbacks in this fit write to .*feature_maps'; give each its own run_name="):
        _fit(model, same)
    assert int(model.optimizer.iterations) == 0
    _fit(model, [_callback(tmp_path), _callback(tmp_path, layers=["conv2"], run_name="conv2_only")])
    assert _steps(tmp_path, "feature_maps") == {"conv1": [0, 1, 2]}
    assert _steps(tmp_path, "conv2_only") == {"conv2": [0, 1, 2]}


def test_a_new_callback_may_follow_an_interrupted_fit(tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise RuntimeError("stopped by the user")

    model, interrupted = small_cnn(), _callback(tmp_path)
    with pytest.raises(RuntimeError, match="stopped by the user"):
        _fit(model, [interrupted, Interrupt()])  # on_train_end never runs
    _fit(model, [_callback(tmp_path)], epochs=3, initial_epoch=1)
    assert _steps(tmp_path)["conv1"] == [0, 1, 2, 3]


@pytest.mark.parametrize(("epoch_freq", "steps"), [(1, [0, 1, 2]), (5, [0, 2])])
def test_early_stopping_logs_the_final_state_once(tmp_path, epoch_freq, steps):
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=100.0)  # stops after the second epoch
    history = _fit(small_cnn(), [_callback(tmp_path, epoch_freq=epoch_freq), stop], epochs=10)
    assert len(history.history["loss"]) == 2
    assert _steps(tmp_path)["conv1"] == steps


def test_batch_steps_grow_across_epochs_and_fits(tmp_path):
    model, callback = small_cnn(), _callback(tmp_path, update_freq=3)
    _fit(model, [callback], epochs=2, samples=128)  # 4 batches an epoch: 8 batches
    _fit(model, [callback], epochs=1, samples=128)  # 4 more
    run = reader.load(str(tmp_path))["feature_maps"]
    assert run.layers["conv1"].steps.tolist() == [0, 3, 6, 8, 9, 12]  # 8: the end of the first fit
    assert run.layers["conv1"].info.step_unit == "batch"


def test_batch_steps_count_batches_with_steps_per_execution(tmp_path):
    model = small_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", steps_per_execution=2)
    _fit(model, [_callback(tmp_path, update_freq=2)], epochs=2, samples=128)
    assert _steps(tmp_path)["conv1"] == [0, 2, 4, 6, 8]


def test_rerunning_into_the_same_log_dir_starts_a_new_run(tmp_path):
    _fit(small_cnn(), [_callback(tmp_path)])
    first = _events(tmp_path)
    with pytest.warns(UserWarning) as caught:  # the notebook habit: a new model, a new callback, the same log_dir
        _fit(small_cnn(), [_callback(tmp_path)])
    notes = [str(w.message) for w in caught if "FeatureMapsCallback" in str(w.message)]
    assert len(notes) == 1 and "already holds another training's feature maps" in notes[0] and "feature_maps_2" in notes[0]
    assert _events(tmp_path) == first  # the first training's folder is untouched
    assert _steps(tmp_path, "feature_maps") == _steps(tmp_path, "feature_maps_2") == {"conv1": [0, 1, 2]}
    _fit(small_cnn(), [_callback(tmp_path)])
    assert _steps(tmp_path, "feature_maps_3") == {"conv1": [0, 1, 2]}


def test_a_resume_continues_the_newest_run(tmp_path):
    _fit(small_cnn(), [_callback(tmp_path)])
    model = small_cnn()
    _fit(model, [_callback(tmp_path)])  # feature_maps_2
    _fit(model, [_callback(tmp_path)], epochs=3, initial_epoch=2)
    assert _steps(tmp_path, "feature_maps_2") == {"conv1": [0, 1, 2, 3]}
    assert _steps(tmp_path, "feature_maps") == {"conv1": [0, 1, 2]}


def _unsized_batches(samples: int = 128):
    """A dataset whose length Keras cannot know (so ``params["steps"]`` is None), of 32-digit batches."""
    import tensorflow as tf

    x, y = mnist_digits(samples)
    signature = (tf.TensorSpec((None, 28, 28, 1), tf.float32), tf.TensorSpec((None,), tf.int64))
    return tf.data.Dataset.from_generator(lambda: ((x[i : i + 32], y[i : i + 32]) for i in range(0, samples, 32)), output_signature=signature)


def test_batch_mode_resume_in_a_new_process_continues_at_the_last_logged_step(tmp_path):
    model = small_cnn()
    model.fit(_unsized_batches(), epochs=2, verbose=0, callbacks=[_callback(tmp_path, update_freq=3)])
    assert _steps(tmp_path) == {"conv1": [0, 3, 6, 8]}
    model.fit(_unsized_batches(), epochs=3, initial_epoch=2, verbose=0, callbacks=[_callback(tmp_path, update_freq=3)])  # a new process
    assert _steps(tmp_path) == {"conv1": [0, 3, 6, 8, 9, 12]}
