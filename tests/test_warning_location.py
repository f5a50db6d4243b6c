"""Warnings point at the user's call (its file and line), not at a line inside the package or the framework calling it."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.models import fit, small_cnn

from tb_featuremaps import FeatureMapsCallback, FeatureMapsWriter

PROBES = np.zeros((2, 8, 8, 1), np.float32)


def test_the_rerun_warning_of_the_callback_points_at_the_fit_call(tmp_path):
    fit(small_cnn(), [FeatureMapsCallback(str(tmp_path), layers=["conv1"])], samples=32)
    with pytest.warns(UserWarning, match="already holds another training") as caught:
        fit(small_cnn(), [FeatureMapsCallback(str(tmp_path), layers=["conv1"])], samples=32)
    warning = next(w for w in caught if "already holds" in str(w.message))
    assert warning.filename.endswith("helpers/models.py")  # the model.fit(...) line of the test helper, the user's code here


@pytest.mark.parametrize("background", [False, True])
def test_the_writers_warnings_point_at_the_write_call(tmp_path, background):
    writer = FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], background=background)
    writer.write(0, {"conv": np.zeros((2, 6, 6, 4), np.float32)})
    writer.close()
    failing = set()

    def timer(stage: str, seconds: float) -> None:
        if stage == "png" and failing:
            raise RuntimeError("drawing broke")

    again = FeatureMapsWriter(tmp_path, PROBES, ["a", "b"], background=background, timer=timer)
    with pytest.warns(UserWarning) as caught:
        again.write(0, {"conv": np.zeros((2, 6, 6, 4), np.float32)})  # a re-run: warned here
        again.flush()
        failing.add(True)
        again.write(1, {"conv": np.zeros((2, 6, 6, 4), np.float32)})  # fails on the worker (or here), warned here or at flush
        again.flush()
    messages = " ".join(str(warning.message) for warning in caught)
    assert "already holds" in messages and "could not log step 1" in messages
    assert caught and all(warning.filename == __file__ for warning in caught), [(w.filename, str(w.message)[:60]) for w in caught]
    again.close()
