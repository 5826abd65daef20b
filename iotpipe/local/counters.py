"""Process-wide counters the emulator reports through `GET /_iotpipe/status`.

Kept apart from the modules that bump them so `server` can read a consistent snapshot
without importing the ESM poller or the function pool.
"""

from __future__ import annotations

import threading
from collections import Counter


class Counters:
    """A thread-safe bag of named integers (records_put, invocations, errors, ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: Counter[str] = Counter()

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def get(self, name: str) -> int:
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def reset(self) -> None:
        with self._lock:
            self._values.clear()


COUNTERS = Counters()
