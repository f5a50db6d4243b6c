"""A stats field added to (or missing from) a log breaks neither the reader nor the plugin: fields are looked up by name."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.models import mnist_digits
from helpers.plugin import get_json, make_client
from tensorboard.util import tensor_util

from tb_featuremaps import FeatureMapsWriter, reader
from tb_featuremaps.format import eventfile, metadata
from tb_featuremaps.format.eventfile import EventFile


def _log(logdir) -> np.ndarray:
    """Writes two steps of one layer through the writer; returns the stats it wrote ``[S, P, F, fields]``."""
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 2, 6, 6, 3)).astype(np.float32)
    with FeatureMapsWriter(str(logdir), probes=mnist_digits(2)[0], write_images=False) as writer:
        for step in range(2):
            assert writer.write(step, {"conv": maps[step]})
    return reader.load(str(logdir))["feature_maps"].layers["conv"].stats


def _rewrite_stats(run_dir, change) -> None:
    """Rewrites the run's event file as another version would have written it: ``change(fields, values) -> (fields, values)``."""
    (path,) = run_dir.glob("events.out.tfevents.*")
    events = list(eventfile.read_events(str(path)))
    for event in events:
        for value in event.summary.value:
            if value.tag.startswith(metadata.KIND_STATS + "/"):
                fields, array = change(list(metadata.STATS_FIELDS), tensor_util.make_ndarray(value.tensor))
                value.tensor.CopyFrom(tensor_util.make_tensor_proto(array))
                if value.HasField("metadata"):
                    content = json.loads(value.metadata.plugin_data.content)
                    value.metadata.plugin_data.content = json.dumps({**content, "fields": fields}).encode()
    path.unlink()
    file = EventFile(str(run_dir))
    for event in events[1:]:  # the new file writes its own first event
        file.add(event)
    file.close()


def _newer(fields, values):  # a later version inserted a field first
    return ["p99", *fields], np.concatenate([np.full((*values.shape[:-1], 1), 1000.0, np.float32), values], axis=-1)


def _older(fields, values):  # an earlier version had no "nonfinite"
    keep = [position for position, name in enumerate(fields) if name != "nonfinite"]
    return [fields[position] for position in keep], values[..., keep]


@pytest.mark.parametrize("change", [_newer, _older], ids=["field-added", "field-missing"])
def test_stats_fields_are_matched_by_name(tmp_path, change):
    written = _log(tmp_path)
    _rewrite_stats(tmp_path / "feature_maps", change)
    nonfinite = metadata.STATS_FIELDS.index("nonfinite")
    expected = written.copy()
    if change is _older:
        expected[..., nonfinite] = np.nan  # what the log does not have
    np.testing.assert_array_equal(reader.load(str(tmp_path))["feature_maps"].layers["conv"].stats, expected)
    client = make_client(tmp_path)
    served = get_json(client, "stats", run="feature_maps", layer="conv", step="1")
    assert served["fields"] == list(metadata.STATS_FIELDS)
    np.testing.assert_allclose(np.array(served["values"], dtype=np.float64), expected[1], rtol=1e-6)
    activity = get_json(client, "activity", run="feature_maps", layer="conv")
    assert activity["steps"] == [0, 1]
    np.testing.assert_allclose(activity["mean"], expected[..., metadata.STATS_FIELDS.index("mean")].mean(axis=1), rtol=1e-5)
