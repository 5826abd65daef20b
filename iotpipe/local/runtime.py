"""State shared by the emulator and the patched moto methods (kept apart to avoid cycles).

`RUNTIME` holds the emulator's moving parts (function pool, ESM manager, DuckDB store,
query engine), set by `server.Emulator`; `original()` returns the moto attribute a patch
replaced, so a replacement can call through to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Runtime:
    """The emulator's moving parts, reachable from the patched moto methods."""

    pool: Any = None
    esm: Any = None
    store: Any = None
    engine: Any = None


RUNTIME = Runtime()
ORIGINALS: dict[tuple[str, str, str], Any] = {}


def original(module: str, cls: str, attr: str) -> Any:
    """The moto attribute replaced by `patches.apply` (KeyError if it was not replaced)."""
    return ORIGINALS[(module, cls, attr)]
