"""The registered resource kinds, checked as they are registered.

Registration is where a kind's mistakes surface, at import rather than in a user's ``up``:
a repeated key, a ``depends_on`` naming a kind not registered before it (registration
order is dependency order, so a typo cannot silently drop an edge), or a kind that does
not say how ``down`` finds it or what ``verify`` checks.
"""

from __future__ import annotations

from collections.abc import Iterable

from iotpipe.errors import IotpipeError
from iotpipe.resources.base import Resource


class KindError(IotpipeError):
    """A resource kind is declared wrongly: a programming error, caught at registration."""


REQUIRED = ("key", "label", "discovery", "health")


def check_kind(kind: type[Resource], known: Iterable[str]) -> None:
    """Refuse ``kind`` unless it states every required attribute and its dependencies
    are among ``known`` (the keys registered before it)."""
    missing = [a for a in REQUIRED if not hasattr(kind, a)]
    if missing:
        raise KindError(f"resource kind {kind.__name__} does not declare {', '.join(missing)}")
    check_dependencies(kind.key, kind.depends_on, known)


def check_dependencies(key: str, depends_on: Iterable[str], known: Iterable[str]) -> None:
    unknown = sorted(set(depends_on) - set(known))
    if unknown:
        raise KindError(
            f"resource kind {key!r} depends on {', '.join(map(repr, unknown))}, which is not "
            "a kind registered before it (a typo, or a registration out of dependency order)"
        )


class Registry:
    """Kinds in registration (= dependency) order."""

    def __init__(self) -> None:
        self._kinds: list[type[Resource]] = []

    def register(self, kind: type[Resource]) -> type[Resource]:
        keys = [k.key for k in self._kinds]
        check_kind(kind, keys)
        if kind.key in keys:
            raise KindError(f"resource kind key {kind.key!r} is registered twice")
        self._kinds.append(kind)
        return kind

    @property
    def kinds(self) -> tuple[type[Resource], ...]:
        return tuple(self._kinds)


# The one registry: ``resources/__init__.py`` registers every kind; the roles read it to
# build their policies (after registration: a policy is only built at run time).
REGISTRY = Registry()
