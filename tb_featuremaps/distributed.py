"""Which process of a distributed training writes: the chief, one per training (``docs/distributed.md``).

One rule for every producer. A process is the chief unless one of the
frameworks it already runs says otherwise: ``TF_CONFIG`` (Keras' multi-worker
strategies), ``torch.distributed`` (DDP, FSDP; torchrun's ``RANK`` before the
process group starts) or ``jax.process_index()``. Nothing here imports torch
or JAX: a framework the process has not imported has no say. Deciding is
local (environment variables, the process group's own rank): no collective,
so no process ever waits for another.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Optional


def tf_config_chief() -> bool:
    """False on the non-chief tasks of a multi-worker ``tf.distribute`` cluster (from ``TF_CONFIG``)."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError:
        return True
    cluster, task = config.get("cluster") or {}, config.get("task") or {}
    if not task:
        return True
    kind, index = task.get("type"), int(task.get("index", 0))
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in cluster


def torch_rank() -> Optional[int]:
    """This process's global rank under ``torch.distributed`` (or torchrun's ``RANK``), or None outside one; never imports torch."""
    if "torch" not in sys.modules:
        return None
    dist = getattr(sys.modules["torch"], "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    rank = os.environ.get("RANK", "")
    return int(rank) if rank.strip().isdigit() else None


def jax_process_index() -> Optional[int]:
    """``jax.process_index()`` once JAX has started its backends in this process, else None; never imports or starts JAX.

    Asking earlier would start them (taking most of a GPU's memory, and too early
    for a later ``jax.distributed.initialize``) in a process that only imported JAX.
    """
    jax = sys.modules.get("jax")
    if jax is None or not hasattr(jax, "process_index"):
        return None
    started = getattr(sys.modules.get("jax._src.xla_bridge"), "backends_are_initialized", None)
    if started is not None and not started():
        return None
    return int(jax.process_index())


def is_chief() -> bool:
    """Whether this process writes: no framework it uses says it is a non-chief worker, rank or process."""
    return tf_config_chief() and torch_rank() in (None, 0) and jax_process_index() in (None, 0)
