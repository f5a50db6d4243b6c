"""Bad arguments fail early with a message that says what to do; bad numbers and failing writes never stop training."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest
from helpers.models import fit, mnist_digits, small_cnn

from tb_featuremaps import FeatureMapsCallback, reader
from tb_featuremaps.writer.summary import SummaryWriter

layers = keras.layers


def _refused_before_training(callback: FeatureMapsCallback, model: keras.Model | None = None) -> keras.Model:
    """Fits with ``callback``, which must raise; returns the model, still untrained."""
    model = model or small_cnn()
    fit(model, [callback], samples=32)
    return model


@pytest.mark.parametrize(
    ("probes", "message"),
    [
        (np.zeros((0, 28, 28, 1)), "probes is empty"),
        ([], "probes is empty"),
        (np.array([["a cat", "a dog"]]), r"must be numeric arrays.*not raw strings"),
        (np.zeros((33, 28, 28, 1)), r"33 probes is more than the 32 it takes; pass probes\[:32\]"),
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
    [
        ("log_dir", ""),
        ("log_dir", "logs\0x"),
        ("update_freq", 0),
        ("update_freq", "batches"),
        ("update_freq", True),
        ("epoch_freq", 0),
        ("epoch_freq", 2.0),
        ("max_filters", -1),
        ("max_filters", np.int64(0)),
        ("max_tile_size", "64"),
        ("run_name", "a/b"),
        ("run_name", "feature\0maps"),
        ("write_weights", "false"),
        ("write_images", 0),
        ("write_images", "all"),
        ("max_step_bytes", 0),
        ("max_step_bytes", True),
        ("max_step_bytes", 1.5e6),
        ("layers", []),
        ("layers", 5),
        ("layers", [None]),
    ],
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
    history = fit(model, [FeatureMapsCallback(str(tmp_path), probes=x[:2], layers=["holes", "conv"])], x, y, epochs=2)
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
    history = fit(model, [FeatureMapsCallback(str(tmp_path), probes=x[:2])], x, y, epochs=2)
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
    with pytest.warns(UserWarning) as caught:
        history = fit(small_cnn(), [FeatureMapsCallback(str(tmp_path))], epochs=2)
    assert len(history.history["loss"]) == 2
    messages = [str(w.message) for w in caught if "FeatureMapsCallback" in str(w.message)]
    assert messages == [  # once per kind of failure, then a count at the end, not a warning at every step
        "FeatureMapsCallback could not log step 0: OSError: disk full. Training goes on; later steps that fail the same way are counted at the end.",
        "FeatureMapsCallback could not close its event file: OSError: disk full.",
        "FeatureMapsCallback could not log 3 steps (0, 1, 2): OSError: disk full.",
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"labels": ["a"] * 10}, r"labels= was given without probes="),
        ({"probes": np.zeros((3, 28, 28, 1)), "labels": "abc"}, r"labels must be a sequence .* got str 'abc'"),
        ({"probes": np.zeros((2, 28, 28, 1)), "labels": {"a": 0, "b": 1}}, r"labels must be a sequence .* got dict"),
        ({"probes": np.zeros((2, 28, 28, 1)), "labels": 5}, r"labels must be a sequence .* got int 5"),
        ({"probes": iter([])}, r"probes is an empty list_iterator"),
        ({"probes": np.zeros((2, 28, 28, 1), np.complex64)}, r"not .*complex numbers"),
        ({"layers": re.compile("conv.*"), "update_freq": np.int64(0)}, r"update_freq must be"),
    ],
    ids=["labels-without-probes", "labels-str", "labels-dict", "labels-int", "empty-iterator", "complex", "numpy-zero"],
)
def test_argument_gaps_get_a_clear_error(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        FeatureMapsCallback(str(tmp_path), **arguments)


def test_numpy_integers_a_bare_regex_and_the_batch_alias_are_accepted(tmp_path):
    callback = FeatureMapsCallback(str(tmp_path), layers=re.compile("conv.*"), update_freq="batch", max_filters=np.int64(4), epoch_freq=np.int32(1))
    assert callback.update_freq == 1 and callback.logger.writer.max_filters == 4 and isinstance(callback.logger.writer.max_filters, int)
    fit(small_cnn(), [callback])
    run = reader.load(str(tmp_path))["feature_maps"]
    assert list(run.layers) == ["conv1", "conv2"]
    assert run.layers["conv1"].steps.tolist() == [0, 1, 2]  # every batch
    assert run.layers["conv1"].info.filters_shown == 4


def test_a_dataset_batched_above_32_gives_its_first_32_probes(tmp_path):
    import tensorflow as tf

    x, y = mnist_digits(64)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64)
    with pytest.warns(UserWarning, match=r"first batch holds 64 examples; the first 32 are the probes"):
        callback = FeatureMapsCallback(str(tmp_path), probes=dataset, layers=["conv1"])
    fit(small_cnn(), [callback], x, y)
    run = reader.load(str(tmp_path))["feature_maps"]
    assert run.probe_labels == [str(label) for label in y[:32]] and len(run.probe_images) == 32


def test_a_subclassed_model_nested_in_a_functional_one_is_explained(tmp_path):
    class Block(keras.Model):
        def __init__(self):
            super().__init__(name="block")
            self.conv = layers.Conv2D(4, 3, name="inner_conv")

        def call(self, inputs):
            return self.conv(inputs)

    inputs = keras.Input((28, 28, 1))
    outputs = layers.Dense(10)(layers.Flatten()(Block()(inputs)))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "sparse_categorical_crossentropy")
    hidden = r"'block' is a subclassed keras.Model nested in this model, and .* cannot be logged.*layers=\['block'\]"
    with pytest.raises(ValueError, match="found no convolution or pooling layer.*" + hidden):
        _refused_before_training(FeatureMapsCallback(str(tmp_path)), model)
    with pytest.raises(ValueError, match="'inner_conv', which is not in the model.*" + hidden):
        _refused_before_training(FeatureMapsCallback(str(tmp_path), layers=["inner_conv"]), model)
    fit(model, [FeatureMapsCallback(str(tmp_path), layers=["block"])], samples=32)  # its own output can be logged
    assert reader.load(str(tmp_path))["feature_maps"].layers["block"].info.layout.tile_height == 26
