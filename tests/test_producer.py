"""One options object and one producer base: a third framework's producer is a few lines, and every public class takes the options."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Optional

import numpy as np
import pytest

from tb_featuremaps import Options, reader
from tb_featuremaps.producer import Producer, Traced
from tb_featuremaps.writer import LayerDescription
from tb_featuremaps.writer import options as options_lib


class FunctionProducer(Producer):
    """A producer whose model is a Python function: the probes' arrays in, ``{layer: [N, H, W, C] array}`` out ("raw arrays")."""

    def __init__(self, function: Any, log_dir: Any, **given: Any):
        super().__init__(log_dir, Options(**given, owner="FunctionProducer"))
        self._set_model(function)

    def _select(self, timer: Any) -> Traced:
        outputs = self._forward(None, [])
        descriptions = {path: LayerDescription("function", False, [None, *array.shape[1:]]) for path, array in outputs.items()}
        return Traced(descriptions, outputs)

    def _forward(self, inputs: Optional[list], paths: list[str]) -> dict[str, np.ndarray]:
        arrays = self.writer.probes.inputs if inputs is None else inputs
        return {path: np.array(array, np.float32) for path, array in self.model(*arrays).items()}

    def _kernel(self, path: str) -> Optional[np.ndarray]:
        return None


def features(images: np.ndarray) -> dict[str, np.ndarray]:
    """Two "layers" of a fixed function of ``[N, 8, 8, 1]`` images: the image times 1..3, and its 2x2 maxima."""
    scaled = images * np.arange(1, 4, dtype=np.float32)  # [N, 8, 8, 3]
    pooled = scaled.reshape(len(images), 4, 2, 4, 2, 3).max(axis=(2, 4))
    return {"scaled": scaled, "pooled": pooled}


def test_a_function_producer_on_the_base_logs_what_the_function_returns(tmp_path):
    rng = np.random.default_rng(0)
    probes, pool = rng.random((3, 8, 8, 1), dtype=np.float32), rng.random((20, 8, 8, 1), dtype=np.float32)
    with pytest.warns(UserWarning, match=r"FunctionProducer draws the first 2 filters of: scaled \(3\), pooled \(3\)"):
        producer = FunctionProducer(features, tmp_path, probes=probes, labels=["a", "b", "c"], pool=pool, top_k=4, max_filters=2, background=False)
        assert producer.layer_paths == ["scaled", "pooled"]
    assert producer.log(0) and producer.log(5)
    producer.close()
    run = reader.load(tmp_path)["feature_maps"]
    assert list(run.layers) == ["scaled", "pooled"] and run.probe_labels == ["a", "b", "c"]
    expected = features(probes)
    for path, layer in run.layers.items():
        assert layer.steps.tolist() == [0, 5] and layer.info.filters_shown == 2
        maxima = layer.stats_at(1)[..., 1]  # [probe, filter], "max"
        np.testing.assert_allclose(maxima, expected[path][..., :2].max(axis=(1, 2)), rtol=1e-6)
    strongest = features(pool)["scaled"][..., :2].max(axis=(1, 2))  # [N, filters]
    found = run.strongest["scaled"].inputs(0)  # [filters, k]
    assert found.tolist() == np.argsort(-strongest, axis=0, kind="stable")[:4].T.tolist()


def test_the_function_producer_is_a_few_lines_on_the_base():
    lines = [line for line in inspect.getsource(FunctionProducer).splitlines()[2:] if line.strip()]  # less the class line and docstring
    assert len(lines) <= 20, len(lines)


def test_a_producer_off_the_chief_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}')
    calls = []
    producer = FunctionProducer(lambda x: calls.append(1) or {"conv": x}, tmp_path)
    assert not producer.log(0) and not calls and not tmp_path.joinpath("feature_maps").exists()
    assert FunctionProducer(lambda x: {"conv": x[..., None]}, tmp_path, all_ranks=True, background=False).log(0)


def test_a_failing_model_warns_and_logs_nothing_of_that_step(tmp_path):
    failing = []

    def function(x):
        if failing:
            raise RuntimeError("the device went away")
        return {"conv": x[..., None]}

    producer = FunctionProducer(function, tmp_path, background=False)
    assert producer.log(0)
    failing.append(True)
    with pytest.warns(UserWarning, match="could not log step 1.*the device went away"):
        assert not producer.log(1)
    producer.close()
    assert reader.load(tmp_path)["feature_maps"].layers["conv"].steps.tolist() == [0]


def _public_classes() -> list[type]:
    from tb_featuremaps import FeatureMapsCallback, FeatureMapsLogger
    from tb_featuremaps.lightning import FeatureMapsCallback as LightningCallback
    from tb_featuremaps.torch import FeatureMapsLogger as TorchLogger

    return [FeatureMapsCallback, FeatureMapsLogger, TorchLogger, LightningCallback]


KEYWORDS = {
    "keras.callback": "log_dir probes labels layers update_freq epoch_freq run_name max_filters max_tile_size write_weights write_images "
    "max_step_bytes pool pool_labels top_k all_ranks",
    "keras.logger": "model log_dir probes labels layers run_name step_unit resume max_filters max_tile_size write_weights write_images "
    "max_step_bytes pool pool_labels top_k timer background all_ranks owner",
    "torch.logger": "module log_dir probes labels layers run_name step_unit resume max_filters max_tile_size write_weights write_images "
    "max_step_bytes pool pool_labels top_k timer background all_ranks owner",
    "lightning": "log_dir probes labels layers every_n_steps every_n_epochs all_ranks run_name step_unit max_filters max_tile_size "
    "write_weights write_images max_step_bytes pool pool_labels top_k timer background",
}
"""Each public class's keywords before the options object: they all stay."""


def test_every_public_class_shows_its_keywords_and_the_options_with_their_defaults():
    defaults = {item.name: item.default for item in dataclasses.fields(Options)}
    for cls, (where, before) in zip(_public_classes(), KEYWORDS.items()):
        parameters = inspect.signature(cls).parameters
        assert set(before.split()) <= set(parameters), (where, set(before.split()) - set(parameters))
        assert "options" in parameters and "given" not in parameters, where
        for name in cls.ACCEPTS:
            if name not in ("probes", "labels", "layers"):
                assert parameters[name].default == defaults[name] and parameters[name].kind == inspect.Parameter.KEYWORD_ONLY, (where, name)
        assert "    Options (keywords" in cls.__doc__ and "        max_step_bytes: A step's budget" in cls.__doc__, where


def test_every_option_given_to_a_public_class_reaches_its_writer(tmp_path):
    given = {"run_name": "other", "max_filters": 7, "max_tile_size": 9, "write_images": False, "max_step_bytes": 12345, "top_k": 3}
    given["pool"] = np.zeros((4, 28, 28, 1), np.float32)
    for cls in _public_classes():
        loggers = "model" in inspect.signature(cls).parameters or "module" in inspect.signature(cls).parameters
        writer = cls(None, tmp_path, **given).writer if loggers else cls(log_dir=tmp_path, **given).logger.writer
        assert (writer.run_name, writer.max_filters, writer.max_tile_size) == ("other", 7, 9), cls
        assert (writer.write_images, writer.max_step_bytes, writer.top_k, len(writer.pool.inputs[0])) == (False, 12345, 3, 4), cls


def test_options_give_a_set_at_once_and_keywords_beside_them_win(tmp_path):
    from tb_featuremaps.torch import FeatureMapsLogger

    shared = Options(max_filters=np.int64(5), write_weights=False, run_name="shared")
    assert shared.max_filters == 5 and type(shared.max_filters) is int
    logger = FeatureMapsLogger(None, tmp_path, options=shared, max_tile_size=16)
    assert (logger.writer.max_filters, logger.writer.max_tile_size, logger.writer.run_name, logger.write_weights) == (5, 16, "shared", False)
    assert logger.options.owner == "FeatureMapsLogger" and shared.owner == "Options"
    again = FeatureMapsLogger(None, tmp_path, options=shared, run_name="mine")
    assert again.writer.run_name == "mine" and again.writer.max_filters == 5


def test_bad_options_are_refused_naming_the_option_and_the_class_given_them(tmp_path):
    from tb_featuremaps.torch import FeatureMapsLogger

    with pytest.raises(ValueError, match=r"^Options: max_filters must be a positive integer, got 0"):
        Options(max_filters=0)
    with pytest.raises(ValueError, match=r"^Options: top_k= was given without pool="):
        dataclasses.replace(Options(), top_k=3)
    with pytest.raises(ValueError, match=r"^FeatureMapsLogger: run_name must be a plain directory name"):
        FeatureMapsLogger(None, tmp_path, options=Options(), run_name="a/b")
    with pytest.raises(ValueError, match=r"^FeatureMapsLogger: options must be a tb_featuremaps.Options, got dict"):
        FeatureMapsLogger(None, tmp_path, options={"max_filters": 4})
    with pytest.raises(
        TypeError, match=r"^FeatureMapsLogger got an unexpected keyword argument 'max_filter'; it takes module, log_dir, .*max_filters"
    ):
        FeatureMapsLogger(None, tmp_path, max_filter=4)
    frozen = Options()
    with pytest.raises(dataclasses.FrozenInstanceError):
        frozen.max_filters = 4


def test_the_writer_checks_its_options_by_the_same_rule(tmp_path):
    from tb_featuremaps import FeatureMapsWriter

    for name, value in [("max_filters", 0), ("write_images", "all"), ("max_step_bytes", 1.5), ("background", "no"), ("step_unit", "day")]:
        with pytest.raises(ValueError) as by_writer:
            FeatureMapsWriter(tmp_path, **{name: value})
        with pytest.raises(ValueError) as by_options:
            Options(**{name: value}, owner="FeatureMapsWriter")
        assert str(by_writer.value) == str(by_options.value) and name in str(by_writer.value)


def test_options_list_every_option_once_with_a_description():
    assert options_lib.NAMES[:3] == ("probes", "labels", "layers") and len(set(options_lib.NAMES)) == len(options_lib.NAMES) == 17
    for item in dataclasses.fields(Options):
        assert item.name == "owner" or len(item.metadata["doc"]) > 20, item.name
