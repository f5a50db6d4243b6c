"""A small thread-safe LRU cache bounded by the total cost of its entries."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Optional


class BudgetCache:
    """Keeps the most recently used entries whose costs add up to at most ``budget``.

    An entry costing more than the whole budget is not kept.
    """

    def __init__(self, budget: int):
        self._budget = budget
        self._used = 0
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Optional[Any]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: Any, cost: int) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._used -= old[1]
            if cost > self._budget:
                return
            self._entries[key] = (value, cost)
            self._used += cost
            while self._used > self._budget:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._used -= dropped
