"""State shared by the emulator and the patched moto methods (kept apart to avoid cycles).

`RUNTIME` holds the emulator's moving parts (function pool, ESM manager, Firehose
deliveries, DuckDB store, query engine), set by `server.Emulator`: the replacements in
the ``*patch`` modules are called by moto, which knows nothing of them, so this is how
they reach them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Runtime:
    """The emulator's moving parts, reachable from the patched moto methods."""

    pool: Any = None
    esm: Any = None
    firehose: Any = None  # local/firehose.FirehoseManager
    store: Any = None
    engine: Any = None


RUNTIME = Runtime()
