"""Every resource kind of a deployment, in dependency order.

The engine walks :data:`ALL_KINDS` forwards for ``up`` (running kinds whose dependencies
are done side by side) and backwards for ``down``.
"""

from __future__ import annotations

from iotpipe.resources.base import Context, Resource
from iotpipe.resources.function import Function
from iotpipe.resources.legacy import LegacyAnalytics
from iotpipe.resources.logs import LogGroup
from iotpipe.resources.mapping import EventSourceMapping
from iotpipe.resources.queue import FailureQueue
from iotpipe.resources.roles import FunctionRole, RetiredRoles, RuleRole
from iotpipe.resources.rule import TopicRule
from iotpipe.resources.stream import Stream
from iotpipe.resources.timeseries import Timestream

ALL_KINDS: tuple[type[Resource], ...] = (
    FailureQueue,
    Stream,
    Timestream,
    FunctionRole,
    RuleRole,
    LogGroup,
    Function,
    EventSourceMapping,
    TopicRule,
    LegacyAnalytics,
    RetiredRoles,
)


def build(ctx: Context) -> list[Resource]:
    """One instance of every kind for this deployment (disabled ones included: the engine
    deletes those, which is how turning an option off removes its resource)."""
    return [kind(ctx) for kind in ALL_KINDS]


__all__ = [
    "ALL_KINDS",
    "Context",
    "EventSourceMapping",
    "FailureQueue",
    "Function",
    "FunctionRole",
    "LegacyAnalytics",
    "LogGroup",
    "Resource",
    "RetiredRoles",
    "RuleRole",
    "Stream",
    "Timestream",
    "TopicRule",
    "build",
]
