"""What every resource kind looks like to the engine.

Six kinds of resource want plain classes with the same small surface, not a framework:
``desired()`` and ``describe()`` return comparable dicts (same keys), the engine diffs them,
and calls ``create()``, ``update()`` or nothing. ``delete()`` treats NotFound as done, so
``down`` can be repeated and can follow a half-finished ``up``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.naming import Names

Props = dict[str, Any]


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

    @cached_property
    def function_zip(self) -> bytes:
        from iotpipe.package import build_function_zip, settings_from_config

        return build_function_zip(settings_from_config(self.config))

    @cached_property
    def function_sha256(self) -> str:
        """Base64 SHA-256, the form Lambda reports as CodeSha256."""
        import base64

        return base64.b64encode(hashlib.sha256(self.function_zip).digest()).decode()

    @cached_property
    def stream_key_arn(self) -> str | None:
        """The stream's customer KMS key ARN (None: the AWS-managed key); read once."""
        from iotpipe.resources.stream import customer_key_arn

        return customer_key_arn(self)

    @property
    def tags(self) -> dict[str, str]:
        return self.names.tags(dict(self.config.tags))


class Resource:
    """Base class; subclasses set the class attributes and implement the five methods."""

    key: ClassVar[str]  # state/plan key, e.g. "stream"
    label: ClassVar[str]  # for people, e.g. "Kinesis stream"
    depends_on: ClassVar[tuple[str, ...]] = ()
    # Fields that cannot change in place: a change to one of them means delete + create.
    replace_on: ClassVar[frozenset[str]] = frozenset()
    # Fields ``plan`` shows for a resource it will create (what a reviewer must see).
    shown_on_create: ClassVar[tuple[str, ...]] = ()
    # What ``strays()`` are deleted with, in ``plan``'s note ("... with the database").
    stray_holder: ClassVar[str] = "resource"

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

    def update(self, current: Props, changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
        """Change in place the fields in ``changes`` ({field: (old, new)}); return outputs."""
        raise NotImplementedError

    def delete(self) -> bool:
        """Delete and wait until gone. True if something was deleted; NotFound is False."""
        raise NotImplementedError

    def outputs(self) -> dict[str, Any]:
        """Outputs of an existing, unchanged resource (no mutating call)."""
        raise NotImplementedError

    def strays(self) -> list[str]:
        """Parts of this resource the config no longer names ("table sensor-data" after
        ``timestream.table`` changed): ``up`` keeps them (they hold data), ``down`` deletes
        them with the resource, and both say so. Read-only; [] when there are none."""
        return []


def diff(desired: Props, current: Props) -> dict[str, tuple[Any, Any]]:
    """Fields whose current value differs from the desired one: {field: (old, new)}."""
    return {k: (current.get(k), v) for k, v in desired.items() if current.get(k) != v}
