"""Bad arguments fail early with a message that says what to do; bad numbers and failing writes never stop training."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from conftest import mnist_digits, small_cnn

from tb_featuremaps import FeatureMapsCallback, reader
from tb_featuremaps.summary import SummaryWriter

layers = keras.layers


def _refused_before_training(callback: FeatureMapsCallback, model: keras.Model | None = None) -> keras.Model:
    """Fits with ``callback``, which must raise; returns the model, still untrained."""
    model = model or small_cnn()
    x, y = mnist_digits(32)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    return model


@pytest.mark.parametrize(
    ("probes", "message"),
    [
        (np.zeros((0, 28, 28, 1)), "probes is empty"),
        ([], "probes is empty"),
        (np.array([["a cat", "a dog"]]), r"must be numeric arrays.*not raw strings"),
        (np.zeros((33, 28, 28, 1)), r"33 probes is more than the 32 it logs; pass probes\[:32\]"),
        ([np.zeros((2, 4)), np.zeros((3, 4))], r"same batch size, got \[2, 3\]"),
    ],
    ids=["empty", "empty-list", "strings", "too-many", "ragged"],
)
def test_bad_probes_are_refused_at_construction(tmp_path, probes, message):
    with pytest.raises(ValueError, match=message):
        FeatureMapsCallback(str(tmp_path), probes=probes)


def test_probes_of_the_wrong_shape_are_refused_before_training(tmp_path):
    callback = FeatureMapsCallback(str(tmp_path), probes=np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"probes have shape \(2, 32, 32, 3\) but the model expects \(None, 28, 28, 1\)"):
        _refused_before_training(callback)
    assert not list(tmp_path.rglob("events.*"))


def test_probes_keyed_by_unknown_input_names_are_refused(tmp_path):
    inputs = keras.Input((28, 28, 1), name="image")
    model = keras.Model(inputs, layers.Dense(10)(layers.Flatten()(layers.Conv2D(2, 3)(inputs))))
    model.compile("sgd", "sparse_categorical_crossentropy")
    callback = FeatureMapsCallback(str(tmp_path), probes={"pixels": np.zeros((2, 28, 28, 1), np.float32)})
    with pytest.raises(ValueError, match=r"keyed \['pixels'\] but the model's inputs are named \['image'\]"):
        _refused_before_training(callback, model)


def test_unknown_layer_names_list_the_available_ones(tmp_path):
    callback = FeatureMapsCallback(str(tmp_path), layers=["conv1", "conv9"])
    with pytest.raises(ValueError, match=r"'conv9', which is not in the model\. Available layers: conv1, pool1, conv2, pool2, flatten.*, logits\."):
        _refused_before_training(callback)


def test_unwritable_log_dir_is_refused_before_training(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    callback = FeatureMapsCallback(str(blocker / "logs"))
    model = small_cnn()
    with pytest.raises(OSError, match=r"cannot create its log directory .*a_file/logs/feature_maps.*pass a log_dir you can write to"):
        _refused_before_training(callback, model)
    assert int(model.optimizer.iterations) == 0


@pytest.mark.parametrize(
    ("argument", "value"),
    [("log_dir", ""), ("update_freq", 0), ("update_freq", "batch"), ("epoch_freq", 0), ("max_filters", -1), ("run_name", "a/b")],
)
def test_bad_arguments_are_refused_at_construction(tmp_path, argument, value):
    arguments = {"log_dir": str(tmp_path), argument: value}
    with pytest.raises(ValueError, match=argument):
        FeatureMapsCallback(**arguments)


def test_nan_activations_are_drawn_transparent_and_training_goes_on(tmp_path):
    x, y = mnist_digits(64)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Lambda(lambda t: keras.ops.where(t > 0.5, np.float32("nan"), t), name="holes"),  # NaN on the ink
            layers.Conv2D(2, 3, name="conv"),
            layers.Flatten(),
            layers.Dense(10),
        ]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[FeatureMapsCallback(str(tmp_path), probes=x[:2], layers=["holes", "conv"])])
    assert len(history.history["loss"]) == 2
    holes = reader.load(str(tmp_path))["feature_maps"].layers["holes"]
    assert holes.steps.tolist() == [0, 1, 2]
    ink = x[:2, ..., 0] > 0.5
    np.testing.assert_allclose(holes.stats[-1, :, 0, 4], ink.mean(axis=(1, 2)), rtol=1e-6)  # the NaN fraction
    picture = holes.grid(-1, probe=0)
    assert picture.shape == (28, 28, 2)  # gray + alpha
    np.testing.assert_array_equal(picture[..., 1] == 0, ink[0])  # transparent exactly where NaN
    assert np.isfinite(holes.stats[-1, :, 0, :4]).all()  # stats over the finite values


def test_infinite_weights_do_not_stop_training(tmp_path):
    x, y = mnist_digits(64)
    model = small_cnn()
    conv1 = model.get_layer("conv1")
    conv1.kernel.assign(np.full(conv1.kernel.shape, np.inf, np.float32))
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[FeatureMapsCallback(str(tmp_path), probes=x[:2])])
    assert len(history.history["loss"]) == 2
    run = reader.load(str(tmp_path))["feature_maps"]
    assert run.layers["conv1"].steps.tolist() == [0, 1, 2]
    assert (run.layers["conv1"].stats[..., 4] > 0).all()
    assert run.layers["conv1"].grid(0).shape[-1] == 2  # alpha channel
    assert run.weights["conv1"].grid(0).shape[-1] == 2


def test_a_failing_writer_warns_and_training_goes_on(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(SummaryWriter, "write_layer", broken)
    monkeypatch.setattr(SummaryWriter, "close", broken)
    x, y = mnist_digits(64)
    with pytest.warns(UserWarning) as caught:
        history = small_cnn().fit(x, y, epochs=2, verbose=0, callbacks=[FeatureMapsCallback(str(tmp_path))])
    assert len(history.history["loss"]) == 2
    messages = [str(w.message) for w in caught if "FeatureMapsCallback" in str(w.message)]
    assert messages == [
        "FeatureMapsCallback could not log step 0: OSError: disk full. Training goes on.",
        "FeatureMapsCallback could not log step 1: OSError: disk full. Training goes on.",
        "FeatureMapsCallback could not log step 2: OSError: disk full. Training goes on.",
        "FeatureMapsCallback could not close its event file: OSError: disk full.",
    ]
