"""Messages name the argument that is wrong: pool=, pool_labels=, top_k= (not probes=), and odd torch probes are taken or explained."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tb_featuremaps import FeatureMapsCallback, FeatureMapsWriter
from tb_featuremaps.keras.logger import FeatureMapsLogger as KerasLogger

PROBES = np.zeros((2, 8, 8, 1), np.float32)


def _two_input_model() -> keras.Model:
    image, extra = keras.Input((8, 8, 1), name="image"), keras.Input((8, 8, 1), name="extra")
    conv = keras.layers.Conv2D(2, 3, name="conv")(keras.layers.Add()([image, extra]))
    return keras.Model({"image": image, "extra": extra}, keras.layers.GlobalAveragePooling2D()(conv))


def test_a_pool_keyed_by_unknown_input_names_names_pool(tmp_path):
    probes = {"image": PROBES, "extra": PROBES}
    pool = {"image": np.zeros((4, 8, 8, 1), np.float32), "other": np.zeros((4, 8, 8, 1), np.float32)}
    logger = KerasLogger(_two_input_model(), tmp_path, probes=probes, pool=pool)
    with pytest.raises(ValueError, match=r"pool= is keyed \['image', 'other'\] but the model's inputs are named"):
        logger.trace()


def test_pool_labels_as_a_string_names_pool_labels(tmp_path):
    with pytest.raises(ValueError, match=r"pool_labels must be a sequence with one label per pool input"):
        FeatureMapsWriter(tmp_path, PROBES, pool=np.zeros((3, 8, 8, 1), np.float32), pool_labels="abc")


@pytest.mark.parametrize("what", ["pool", "probes"])
def test_a_failing_dataset_or_generator_is_wrapped_naming_its_argument(tmp_path, what):
    def batches(good: int):
        yield from [np.zeros((2, 8, 8, 1), np.float32)] * good
        raise OSError("the disk went away")

    given = {"probes": batches(0)} if what == "probes" else {"probes": PROBES, "pool": batches(1)}  # the probes take the first batch only
    with pytest.raises(ValueError, match=rf"{what}= could not be read: OSError: the disk went away") as raised:
        FeatureMapsWriter(tmp_path, **given)
    assert isinstance(raised.value.__cause__, OSError)


def test_top_k_without_a_pool_names_both(tmp_path):
    with pytest.raises(ValueError, match=r"top_k= was given without pool="):
        FeatureMapsWriter(tmp_path, PROBES, top_k=5)
    with pytest.raises(ValueError, match=r"top_k= was given without pool="):
        FeatureMapsCallback(str(tmp_path), top_k=5)


def test_bfloat16_torch_probes_are_taken_as_float32_and_meta_ones_are_explained(tmp_path):
    torch = pytest.importorskip("torch")
    writer = FeatureMapsWriter(tmp_path, torch.ones((2, 8, 8, 1), dtype=torch.bfloat16), pool=torch.ones((3, 8, 8, 1), dtype=torch.bfloat16))
    assert writer.probes.inputs[0].dtype == np.float32 and writer.pool.inputs[0].dtype == np.float32
    with pytest.raises(ValueError, match=r"probes= is a tensor on the meta device, which holds no values"):
        FeatureMapsWriter(tmp_path, torch.ones((2, 8, 8, 1), device="meta"))
    from tb_featuremaps.torch import FeatureMapsLogger

    module = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
    with pytest.raises(ValueError, match=r"pool= is a tensor on the meta device"):
        FeatureMapsLogger(module, tmp_path, probes=torch.ones((2, 1, 8, 8)), pool=torch.ones((3, 1, 8, 8), device="meta"))


def test_top_k_above_what_a_reader_takes_is_refused(tmp_path):
    pool = np.zeros((200, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match=r"top_k=101 is more than a reader takes \(100 ranks"):
        FeatureMapsWriter(tmp_path, PROBES, pool=pool, top_k=101)
    FeatureMapsWriter(tmp_path, PROBES, pool=pool, top_k=100).close()
