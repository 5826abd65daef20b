"""One check's verdict, shared by the health checks (`verify`) and the probe (`probe`).

Its own module so that the two can import it without importing each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
