"""What every resource kind looks like to the engine, to ``down`` and to ``verify``.

Eleven kinds of resource want plain classes with the same small surface, not a framework:
``desired()`` and ``describe()`` return comparable dicts (same keys), the engine diffs them,
and calls ``create()``, ``update()`` or nothing. ``delete()`` treats NotFound as done, so
``down`` can be repeated and can follow a half-finished ``up``.

A kind also states what the rest of iotpipe needs to know about it, so that adding a kind
is one module plus one registration (``resources/__init__.py``): how ``down`` finds it with
no state file (:attr:`Resource.discovery`), and what ``verify`` checks beyond "exists and
matches the config" (:attr:`Resource.health`). Neither has a default: registration refuses
a kind that does not say, so a new kind cannot be forgotten by ``down`` or ``verify``.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.devices.identity import Scope
from iotpipe.devices.registry import with_device_things
from iotpipe.naming import Names
from iotpipe.package import build_function_zip, settings_from_config
from iotpipe.poll import Clock
from iotpipe.resources.streamkey import customer_key_arn
from iotpipe.verdict import Check

Props = dict[str, Any]
# The fix for most findings of ``verify``: ``up`` reconciles what exists with the config.
UP = "Run 'iotpipe up' to recreate or reconcile it ('iotpipe plan' shows what changes)."
Changes = dict[str, tuple[Any, Any]]


@dataclass
class Context:
    """What a resource needs to do its job; ``sleep``/``clock`` are injected for tests."""

    config: Config
    names: Names
    gateway: Gateway
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # Filled by the engine as steps finish: e.g. outputs["queue"]["url"].
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return self.gateway.client(service)

    @property
    def poll_clock(self) -> Clock:
        """The injected sleep and clock, in the form :mod:`iotpipe.poll` takes."""
        return Clock(self.sleep, self.clock)

    @cached_property
    def function_zip(self) -> bytes:
        """The function's zip; its registry holds the deployment's things (`devices add`)
        merged under the config's ``devices:`` entries."""
        settings = settings_from_config(self.config)
        return build_function_zip(with_device_things(settings, self.client("iot"), self.devices))

    @property
    def devices(self) -> Scope:
        """The deployment as the device operations see it (things, group, policy)."""
        return Scope(self.names, self.config.iot_rule.topic, self.tags, self.poll_clock)

    @cached_property
    def function_sha256(self) -> str:
        """Base64 SHA-256, the form Lambda reports as CodeSha256."""
        return base64.b64encode(hashlib.sha256(self.function_zip).digest()).decode()

    @cached_property
    def stream_key_arn(self) -> str | None:
        """The stream's customer KMS key ARN (None: the AWS-managed key); read once."""
        return customer_key_arn(
            self.config.stream.kms_key, self.names.region, lambda: self.client("kms")
        )

    @property
    def tags(self) -> dict[str, str]:
        return self.names.tags(dict(self.config.tags))


# A health check: what a correct configuration can still get wrong at run time.
HealthCheck = Callable[[Context], Check]
# (gateway, prefix) -> the names in the gateway's region and account starting with prefix.
Lister = Callable[[Gateway, str], Iterable[str]]


@dataclass(frozen=True)
class Discovery:
    """How ``down`` finds this kind's deployments with no state file.

    ``name`` is the kind's name as :class:`Names` gives it (one pattern, stated once): the
    finder names it with a marker suffix to learn what comes before and after the suffix,
    lists names starting with that prefix with ``listed`` and takes the suffix from each
    match. ``ours`` is for names that do not carry the
    region (IAM is global): given a match's own :class:`Names`, is it this region's?
    ``narrow`` False: ``listed`` ignores the prefix (IAM lists every role), so one listing
    serves every kind that uses it.
    """

    name: Callable[[Names], str]
    listed: Lister
    ours: Callable[[Gateway, str, Names], bool] | None = None
    narrow: bool = True


# A grant's place in its role's policy; see :class:`Grant`.
GrantPhase = Literal["access", "key", "optional"]
PHASES: tuple[GrantPhase, ...] = ("access", "key", "optional")


@dataclass(frozen=True)
class Grant:
    """IAM statements a role (``role``: the role kind's key) needs for this kind, from
    :mod:`iotpipe.policies`: given the names and the stream's customer key ARN (or None).

    Only enabled kinds grant (no queue, no queue statement). A policy lists every
    ``access`` grant, then ``key`` grants (KMS), then grants to ``optional`` kinds, each in
    registration order: the order deployed policies have (another order would be a change
    in ``plan`` for every existing role).
    """

    role: str
    statements: Callable[[Names, str | None], list[dict[str, Any]]]
    phase: GrantPhase = "access"


class Resource:
    """Base class; subclasses set the class attributes and implement the methods below.

    Required class attributes: ``key``, ``label``, ``discovery`` and ``health`` (the
    last two may be empty tuples, but must be stated; ``registry.register`` checks).
    """

    key: ClassVar[str]  # state/plan key, e.g. "stream"
    label: ClassVar[str]  # for people, e.g. "Kinesis stream"
    # Keys of the kinds this one needs first; registration refuses an unknown key.
    depends_on: ClassVar[tuple[str, ...]] = ()
    # Fields that cannot change in place: a change to one of them means delete + create,
    # and ``plan`` says "replace".
    replace_on: ClassVar[frozenset[str]] = frozenset()
    # Fields ``plan`` shows for a resource it will create (what a reviewer must see).
    shown_on_create: ClassVar[tuple[str, ...]] = ()
    # What ``strays()`` are deleted with, in ``plan``'s note ("... with the database").
    stray_holder: ClassVar[str] = "resource"
    # How ``down`` finds it without state; () only for a kind found through another one.
    discovery: ClassVar[tuple[Discovery, ...]]
    # What ``verify`` checks once it exists and matches the config; () when nothing more.
    health: ClassVar[tuple[HealthCheck, ...]]
    # What this kind needs from the roles (their policies are built from these).
    grants: ClassVar[tuple[Grant, ...]] = ()
    # ``verify``'s advice for a field that differs, where "run up" alone would not say what
    # went wrong: {field: fix}.
    fixes: ClassVar[dict[str, str]] = {}

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @property
    def name(self) -> str:
        raise NotImplementedError

    def enabled(self) -> bool:
        """False for optional resources the config switched off (they are then deleted)."""
        return True

    def desired(self) -> Props:
        raise NotImplementedError

    def describe(self) -> Props | None:
        """Current properties with the keys of ``desired()``, or None if it does not exist."""
        raise NotImplementedError

    def create(self) -> dict[str, Any]:
        """Create, wait until usable, and return outputs for state (name, arn, ...)."""
        raise NotImplementedError

    def update(self, current: Props, changes: Changes) -> dict[str, Any]:
        """Change in place the fields in ``changes`` ({field: (old, new)}); return outputs.

        Never called with a change :meth:`recreates` names: the engine replaces instead."""
        raise NotImplementedError

    def recreates(self, changes: Changes) -> bool:
        """Does this change need delete + create? ``replace_on`` fields, and any change a
        kind knows its service cannot make in place (override to add those)."""
        return bool(set(changes) & self.replace_on)

    def delete(self) -> bool:
        """Delete and wait until gone. True if something was deleted; NotFound is False."""
        raise NotImplementedError

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        """Outputs of an existing, unchanged resource (no mutating call). ``current`` is
        what ``describe()`` returned, so a kind that needs a read for its outputs (a URL,
        a UUID) takes it from there; None (a caller without it) reads again."""
        raise NotImplementedError

    def holdings(self) -> str | None:
        """The data deleting this resource destroys, in words for ``down``'s prompt
        ("1,204 objects (3.1 MB) in bucket b"); None when it holds none worth naming.
        Read-only."""
        return None

    def strays(self) -> list[str]:
        """Parts of this resource the config no longer names ("table sensor-data" after
        ``timestream.table`` changed): ``up`` keeps them (they hold data), ``down`` deletes
        them with the resource, and both say so. Read-only; [] when there are none."""
        return []


def diff(desired: Props, current: Props) -> Changes:
    """Fields whose current value differs from the desired one: {field: (old, new)}.

    Only ``desired``'s keys count: ``describe()`` may carry more (ids that ``outputs``
    needs), which are facts about the resource, not settings."""
    return {k: (current.get(k), v) for k, v in desired.items() if current.get(k) != v}
