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

    @property
    def used(self) -> int:
        """The total cost of the entries kept."""
        with self._lock:
            return self._used

    def put(self, key: Hashable, value: Any, cost: int, evict: bool = True) -> bool:
        """Keeps ``value``, evicting the least recently used entries to make room; whether it was kept.

        With ``evict=False`` nothing else is dropped: an entry that does not fit in what
        is left of the budget is not kept (a background read never evicts what requests use).
        """
        with self._lock:
            old = self._entries.get(key)
            room = self._budget - self._used + (old[1] if old is not None else 0)
            if cost > (self._budget if evict else room):
                if evict and old is not None:
                    del self._entries[key]
                    self._used -= old[1]
                return False
            if old is not None:
                del self._entries[key]
                self._used -= old[1]
            self._entries[key] = (value, cost)
            self._used += cost
            while self._used > self._budget:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._used -= dropped
            return True
