"""``topk/<layer>``: which pool inputs each drawn filter responds to most, where and how strongly (written with ``strongest``)."""

from __future__ import annotations

from .base import TensorKind

NAME = "topk"

TOPK_FIELDS = ("input", "value", "row", "col", "top", "left")
"""Last axis of a topk tensor ``[filters, top_k, len(TOPK_FIELDS)]``, one row per filter and rank.

``input``: the pool input's index (ranks sorted by ``value``, the filter's
maximum activation over its map for that input, descending; ties by index; a
pool input appears once per filter). ``row``/``col``: where that maximum lies in
the layer's output (full resolution; ``row`` is 0 for 1-D outputs). ``top``/
``left``: the input pixel at the patch's top-left corner, negative where the
receptive field reaches into the padding.
"""

MAX_TOP_K = 100
"""Most ranks per filter a reader takes of a ``topk`` tensor (and of a ``strongest`` sheet): the first ``MAX_TOP_K``,
the strongest; a tensor with more is cut there and said to be truncated. Producers keep ``top_k`` at most this."""

KIND = TensorKind(
    NAME,
    "each drawn filter's strongest pool inputs: index, activation, where in the output and the patch's corner, float32 [filters, k, fields]",
    {"max_top_k": MAX_TOP_K},
    fields=TOPK_FIELDS,
    axes=("filters", "ranks"),
    grid="strongest",
    what="strongest pool inputs",
    max_ranks=MAX_TOP_K,
)
