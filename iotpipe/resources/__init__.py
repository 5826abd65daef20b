"""Every resource kind of a deployment, in dependency order.

The engine walks :data:`ALL_KINDS` forwards for ``up`` (running kinds whose dependencies
are done side by side) and backwards for ``down``; ``discover`` and ``verify`` loop over
it too. A new kind is its module plus one ``REGISTRY.register`` line here, after the
kinds it depends on (registration checks the kind: see :mod:`iotpipe.resources.registry`).
"""

from __future__ import annotations

from iotpipe.resources.base import Context, Resource
from iotpipe.resources.catalog import LakeCatalog
from iotpipe.resources.delivery import DeliveryStream
from iotpipe.resources.devicepolicy import DevicePolicy
from iotpipe.resources.function import Function
from iotpipe.resources.lakebucket import LakeBucket
from iotpipe.resources.lakeroles import FirehoseRole, TransformRole
from iotpipe.resources.legacy import LegacyAnalytics
from iotpipe.resources.logs import LogGroup
from iotpipe.resources.mapping import EventSourceMapping
from iotpipe.resources.queue import FailureQueue
from iotpipe.resources.registry import REGISTRY
from iotpipe.resources.roles import FunctionRole, RetiredRoles, RuleRole
from iotpipe.resources.rule import TopicRule
from iotpipe.resources.stream import Stream
from iotpipe.resources.things import Things
from iotpipe.resources.timeseries import Timestream
from iotpipe.resources.transform import TransformFunction, TransformLogGroup
from iotpipe.resources.workgroup import Workgroup

REGISTRY.register(FailureQueue)
REGISTRY.register(Stream)
REGISTRY.register(Timestream)
REGISTRY.register(FunctionRole)
REGISTRY.register(RuleRole)
REGISTRY.register(LogGroup)
REGISTRY.register(Function)
REGISTRY.register(EventSourceMapping)
# The lake (after the stream it reads, before the rule, which needs none of it).
REGISTRY.register(TransformRole)
REGISTRY.register(FirehoseRole)
REGISTRY.register(TransformLogGroup)
REGISTRY.register(TransformFunction)
REGISTRY.register(LakeBucket)
REGISTRY.register(LakeCatalog)
REGISTRY.register(Workgroup)
REGISTRY.register(DeliveryStream)
REGISTRY.register(TopicRule)
REGISTRY.register(DevicePolicy)
REGISTRY.register(Things)
REGISTRY.register(LegacyAnalytics)
REGISTRY.register(RetiredRoles)

ALL_KINDS: tuple[type[Resource], ...] = REGISTRY.kinds


def build(ctx: Context) -> list[Resource]:
    """One instance of every kind for this deployment (disabled ones included: the engine
    deletes those, which is how turning an option off removes its resource)."""
    return [kind(ctx) for kind in ALL_KINDS]


__all__ = [
    "ALL_KINDS",
    "REGISTRY",
    "Context",
    "DeliveryStream",
    "DevicePolicy",
    "EventSourceMapping",
    "FailureQueue",
    "FirehoseRole",
    "Function",
    "FunctionRole",
    "LakeBucket",
    "LakeCatalog",
    "LegacyAnalytics",
    "LogGroup",
    "Resource",
    "RetiredRoles",
    "RuleRole",
    "Stream",
    "Things",
    "Timestream",
    "TopicRule",
    "TransformFunction",
    "TransformLogGroup",
    "TransformRole",
    "Workgroup",
    "build",
]
