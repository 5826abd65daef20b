"""How often CPython's cyclic garbage collector runs while iotpipe moves bulk data.

Why: CPython runs its collector after every 700 net container allocations, and one
pass in a hundred examines every object the process holds. Moving data allocates a few
dicts and lists per message (payloads, request bodies, storage rows, events), and the
processes that do it hold hundreds of thousands of long-lived objects (botocore's service
models; in the embedded AWS also moto's backends and restored state). Measured on
200,000 messages through the default pipeline on the embedded AWS, the collector took
5.2 s of the emulator's interpreter lock (pauses up to 240 ms, no request answered
meanwhile), ~0.3 s of each function worker (pauses up to 128 ms inside an invoke) and
~1 s of send-test's 7.5 s of CPU. What those allocations make is freed by reference
counting (they form no cycles), so collecting far less often frees the same memory; the
objects built at start-up are frozen (never examined again, still freed by reference
counting if released). Standard library only: the function worker imports it.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLDS = (20_000, 20, 20)  # gen0 allocations, gen1 and gen2 passes; CPython: 700, 10, 10

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] = ()


def for_bulk_process() -> None:
    """For a process whose whole life is moving data: the emulator, a function worker."""
    gc.set_threshold(*BULK_THRESHOLDS)


def freeze_startup() -> None:
    """Collect once, then leave everything built so far out of later collections."""
    gc.collect()
    gc.freeze()


@contextmanager
def bulk() -> Iterator[None]:
    """Bulk thresholds for a stretch of a general process (send-test's delivery); the
    previous ones come back when the last overlapping stretch ends (threads may overlap)."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*BULK_THRESHOLDS)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
