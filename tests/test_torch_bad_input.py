"""The PyTorch logger checks its pool like its probes: a clear ValueError naming pool=, never a log that fails at every step."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from tb_featuremaps import reader  # noqa: E402
from tb_featuremaps.torch import FeatureMapsLogger  # noqa: E402

PROBES = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)


def _module() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 3, 3), act=nn.ReLU(), pool=nn.MaxPool2d(2)))


@pytest.mark.parametrize(
    "pool, message",
    [
        (torch.rand(40, 28, 28, 1), r"pool= .*\(40, 28, 28, 1\).*laid out like probes="),
        (torch.rand(40, 3, 28, 28), r"pool= .*\(40, 3, 28, 28\)"),
        (torch.randint(0, 255, (40, 1, 28, 28)), r"pool= is int64 but probes= are float32"),
        (torch.rand(40, 28, 28), r"pool= has 3 axes per batch but probes= have 4"),
    ],
)
def test_a_pool_the_module_cannot_take_is_refused_naming_pool(tmp_path, pool, message):
    with pytest.raises(ValueError, match=message):
        logger = FeatureMapsLogger(_module(), tmp_path, probes=PROBES, pool=pool, background=False)
        logger.log(0)
    assert reader.load(tmp_path) == {}


def test_a_good_pool_logs_its_strongest_inputs(tmp_path):
    with FeatureMapsLogger(_module(), tmp_path, probes=PROBES, pool=torch.rand(40, 1, 28, 28), background=False) as logger:
        assert logger.log(0) and logger.log(1)
    run = reader.load(tmp_path)["feature_maps"]
    assert run.layers["conv"].steps.tolist() == [0, 1] and run.strongest["conv"].steps.tolist() == [0, 1]
