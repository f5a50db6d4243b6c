"""What every series' metadata content is: the plugin name, the format version, its JSON and how it is read.

The kind modules (:mod:`.kinds`) and :mod:`.metadata` build on this module; it
imports nothing of the package.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from tensorboard.compat.proto import summary_pb2

PLUGIN_NAME = "feature_maps"
"""Name of the plugin and of every series it owns (no dots: TensorBoard forbids them)."""

FORMAT_VERSION = 1
"""Version written into every metadata content; readers reject newer versions."""


def tag_for(kind: str, layer_path: str) -> str:
    """Returns the tag of ``kind``'s series for ``layer_path``: ``<kind>/<layer>``."""
    return f"{kind}/{layer_path}"


class FormatError(ValueError):
    """Raised for metadata content this version cannot read."""


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def markdown_text(text: str) -> str:
    """``text`` made safe to embed in a summary description, which TensorBoard renders as Markdown.

    HTML is escaped as entities and Markdown's punctuation with backslashes, so a
    layer named ``<img src=x>`` or ``**bold**`` shows as those characters.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=True))


def summary_metadata(content: dict, data_class: int, description: str = "") -> summary_pb2.SummaryMetadata:
    """A series' ``SummaryMetadata``: ``content`` as sorted-key JSON under :data:`PLUGIN_NAME`."""
    return summary_pb2.SummaryMetadata(
        summary_description=description,
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=PLUGIN_NAME,
            content=json.dumps(content, sort_keys=True).encode("utf-8"),
        ),
        data_class=data_class,
    )


def parse_content(content: bytes) -> dict[str, Any]:
    """Decodes a series' plugin content; raises :class:`FormatError` if unreadable."""
    try:
        data = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(f"feature_maps metadata is not JSON: {error}") from None
    if not isinstance(data, dict) or "kind" not in data or "version" not in data:
        raise FormatError("feature_maps metadata lacks 'kind' or 'version'")
    if not isinstance(data["version"], int) or isinstance(data["version"], bool):
        raise FormatError(f"feature_maps metadata has version {data['version']!r}, not an integer")
    if data["version"] > FORMAT_VERSION:
        raise FormatError(f"feature_maps format version {data['version']} is newer than this reader's ({FORMAT_VERSION}); upgrade tb-featuremaps")
    return data


def align_fields(values: np.ndarray, fields: Sequence[str], known: Sequence[str]) -> np.ndarray:
    """A tensor stored with ``fields`` as its last axis, in ``known`` order.

    A field the log lacks is NaN, one this version does not know is dropped: so a
    field can be added without breaking older logs or older readers
    (docs/format.md, "Adding a field").
    """
    values = np.asarray(values, np.float32)
    if values.shape[-1:] != (len(fields),):
        raise FormatError(f"a tensor has {values.shape[-1] if values.ndim else 0} fields but its metadata names {len(fields)}: {list(fields)}")
    if tuple(fields) == tuple(known):
        return values
    aligned = np.full((*values.shape[:-1], len(known)), np.nan, np.float32)
    for position, name in enumerate(known):
        if name in fields:
            aligned[..., position] = values[..., list(fields).index(name)]
    return aligned
