"""The two things a Kinesis record can become after validation.

A `Reading` goes to Timestream (perhaps with some measures rejected); a `Rejection` goes
to the quarantine. Nothing else exists, which is what makes the accounting balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .decode import Item
from .reasons import Problem

Dimensions = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Reading:
    """A valid message: who, when (epoch ms), what (measure -> value) and where (dims)."""

    item: Item
    device_id: str
    time_ms: int
    measures: dict[str, float]
    dims: Dimensions
    rejected: dict[str, Problem] = field(default_factory=dict)


@dataclass(slots=True)
class Rejection:
    """A message that will not be written, with the first reason found."""

    item: Item
    problem: Problem
    device_id: str | None = None
    rejected: dict[str, Problem] = field(default_factory=dict)
