"""What a function worker depends on and what an invoke returns (kept apart from `functions`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = ["FunctionSpec", "InvokeResult", "Stats"]


@dataclass(frozen=True)
class FunctionSpec:
    """Everything about a deployed function that its worker depends on."""

    name: str
    arn: str
    account: str
    region: str
    handler: str
    runtime: str
    timeout_s: float
    memory_mb: int
    env: tuple[tuple[str, str], ...]
    code_sha: str
    role: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.account, self.region, self.name)

    @classmethod
    def from_moto(cls, fn: Any) -> FunctionSpec:
        return cls(
            name=fn.function_name,
            arn=fn.function_arn,
            account=fn.account_id,
            region=fn.region,
            handler=fn.handler or "",
            runtime=fn.run_time or "",
            timeout_s=float(fn.timeout or 3),
            memory_mb=int(fn.memory_size or 128),
            env=tuple(sorted((fn.environment_vars or {}).items())),
            code_sha=getattr(fn, "code_digest", "") or hashlib.sha256(fn.code_bytes).hexdigest(),
            role=fn.role,
        )


@dataclass
class InvokeResult:
    ok: bool
    payload: Any = None
    error: dict[str, Any] | None = None
    kind: str = "ok"  # ok | error | timeout | crash
    duration_ms: float = 0.0


@dataclass
class Stats:
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    crashes: int = 0
    restarts: int = 0
    last_error: str = ""
