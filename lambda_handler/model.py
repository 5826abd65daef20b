"""The two things a Kinesis record can become after validation.

A `Reading` goes to Timestream (perhaps with some measures rejected); a `Rejection` goes
to the quarantine. Nothing else exists, which is what makes the accounting balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, final

from .decode import Item
from .reasons import Problem

Dimensions = tuple[tuple[str, str], ...]


class Identity(NamedTuple):
    """Who sent a message and the dimensions its records carry (memoised per device)."""

    device_id: str
    dims: Dimensions
    group: str  # sort key: dimension values, DeviceId last (see records.plan_requests)
    device_dimension: list[dict[str, str]]  # [{"Name": "DeviceId", ...}], shared by records


def make_identity(dims: Dimensions) -> Identity:
    """Identity for `dims`, whose first entry is ("DeviceId", id)."""
    group = "\x00".join(f"{name}\x01{value}" for name, value in (*dims[1:], dims[0]))
    return Identity(dims[0][1], dims, group, [{"Name": dims[0][0], "Value": dims[0][1]}])


# final (both): `type(x) is Reading` then narrows both branches for mypy.
@final
@dataclass(slots=True)
class Reading:
    """A valid message: who (and where), when (epoch ms), what (measure -> value)."""

    item: Item
    identity: Identity
    time_ms: int
    measures: dict[str, float]
    rejected: dict[str, Problem] = field(default_factory=dict)

    @property
    def device_id(self) -> str:
        return self.identity.device_id

    @property
    def dims(self) -> Dimensions:
        return self.identity.dims


@final
@dataclass(slots=True)
class Rejection:
    """A message that will not be written, with the first reason found."""

    item: Item
    problem: Problem
    device_id: str | None = None
    rejected: dict[str, Problem] = field(default_factory=dict)
