"""How a change to moto is declared, checked and installed: per service, next to its code.

A replacement is declared where it is written, against the moto class it changes (the
class object, imported from `motointernals`), in LocalStack's ``@patch(target)`` style::

    KINESIS = service("kinesis")

    @KINESIS.patch(moto.Shard, "get_records")
    def get_records(self, last_sequence_id, limit): ...

    @KINESIS.patch(moto.KinesisBackend, "get_shard_iterator", pass_original=True)
    def get_shard_iterator(original, self, stream_arn, ...): ...  # original: moto's

The parameters moto's attribute must have are the replacement's own (without
``original``), or ``params=`` when the replacement takes ``*args``. `self_test` checks
every one before anything is replaced, so a moto upgrade that moves a signature stops the
emulator at start with a message naming the moto version, instead of misbehaving later.
A property is patched the same way (its getter's parameters are checked). `add` declares
an attribute moto lacks (and refuses to start if moto grew its own).

Why per service: what a service changes in moto, and later how it persists (issue 11),
registers on its `Service`; `patches.apply()` installs every registered service in one call.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

PINNED = "moto[server]>=5.2.1,<5.3"
R = TypeVar("R", bound=Callable[..., Any] | property)


class PatchError(RuntimeError):
    """moto no longer has what a patch replaces: refuse to start."""


def moto_version() -> str:
    """Read from the installed distribution: ``import moto`` alone costs half a second."""
    try:
        return importlib.metadata.version("moto")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def changed(problems: Iterable[str]) -> PatchError:
    return PatchError(
        f"moto {moto_version()} is not the moto iotpipe's embedded AWS was built for "
        f"(pinned: {PINNED}). Changed: " + "; ".join(problems)
    )


@contextlib.contextmanager
def moto_imports() -> Iterator[None]:
    """Around the imports of moto's classes: a class moto moved or renamed is a PatchError."""
    try:
        yield
    except ImportError as e:
        raise changed([str(e)]) from None


def _params(fn: Callable[..., Any] | property, skip_first: bool) -> tuple[str, ...]:
    target = fn.fget if isinstance(fn, property) else fn
    if target is None:
        return ()
    names = tuple(inspect.signature(target).parameters)
    return names[1:] if skip_first else names


@dataclass(eq=False)
class Patch:
    """One moto class attribute and what replaces it."""

    owner: type
    attr: str
    replacement: Callable[..., Any] | property
    params: tuple[str, ...] = ()  # moto's parameter names; () = the replacement's own
    pass_original: bool = False
    original: Any = field(default=None, init=False)
    installed: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not self.params:
            self.params = _params(self.replacement, self.pass_original)

    @property
    def name(self) -> str:
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.attr}"

    def current(self) -> Any:
        """moto's attribute (its original even once this patch is installed)."""
        now = self.owner.__dict__.get(self.attr)
        return self.original if now is not None and now is self.installed else now

    def problem(self) -> str | None:
        current = self.current()
        if isinstance(current, property) and current.fget is not None:
            current = current.fget
        if current is None or not callable(current):
            return f"{self.name} is missing"
        params = tuple(inspect.signature(current).parameters)
        if params != self.params:
            return f"{self.name}{params} (expected {self.params})"
        return None

    def install(self) -> None:
        """Replace (idempotent: installing twice keeps the first original)."""
        if self.installed is not None and self.owner.__dict__.get(self.attr) is self.installed:
            return
        self.original = self.owner.__dict__.get(self.attr)
        self.installed = self._wrapped() if self.pass_original else self.replacement
        setattr(self.owner, self.attr, self.installed)

    def _wrapped(self) -> Callable[..., Any]:
        replacement, original = self.replacement, self.original
        assert callable(replacement)

        @functools.wraps(replacement)
        def call(*args: Any, **kwargs: Any) -> Any:
            return replacement(original, *args, **kwargs)

        return call


@dataclass(eq=False)
class Addition:
    """An attribute moto lacks (e.g. Timestream CancelQuery), added, nothing replaced."""

    owner: type
    attr: str
    value: Callable[..., Any] | property

    def problem(self) -> str | None:
        existing = self.owner.__dict__.get(self.attr)
        if existing is not None and existing is not self.value:
            return f"{self.owner.__qualname__}.{self.attr} now exists in moto: review the addition"
        return None

    def install(self) -> None:
        setattr(self.owner, self.attr, self.value)


@dataclass(eq=False)
class Service:
    """Everything one emulated service changes in moto (later: how it persists)."""

    name: str
    patches: list[Patch] = field(default_factory=list)
    additions: list[Addition] = field(default_factory=list)

    def patch(
        self,
        owner: type,
        attr: str,
        *,
        params: str | None = None,
        pass_original: bool = False,
    ) -> Callable[[R], R]:
        """Declare `owner.attr` replaced by the decorated function or property.

        `params` (space-separated) only when the replacement's own parameters are not
        moto's (a ``*args`` pass-through). The decorated object is returned unchanged, so
        it stays callable and testable on its own.
        """

        def register(replacement: R) -> R:
            expected = tuple(params.split()) if params is not None else ()
            self.patches.append(Patch(owner, attr, replacement, expected, pass_original))
            return replacement

        return register

    def add(self, owner: type, attr: str) -> Callable[[R], R]:
        def register(value: R) -> R:
            assert callable(value) or isinstance(value, property)
            self.additions.append(Addition(owner, attr, value))
            return value

        return register


SERVICES: dict[str, Service] = {}


def service(name: str) -> Service:
    """The one `Service` of that name (modules of one service share it)."""
    return SERVICES.setdefault(name, Service(name))


def self_test(patches: Iterable[Patch | Addition]) -> None:
    """Raise PatchError naming every attribute moto no longer has as expected."""
    problems = [p for p in (item.problem() for item in patches) if p]
    if problems:
        raise changed(problems)


def install(services: Iterable[Service]) -> None:
    """Self-test everything first, then replace: a changed moto is left untouched."""
    chosen = list(services)
    items: list[Patch | Addition] = [*(p for s in chosen for p in s.patches)]
    items += [a for s in chosen for a in s.additions]
    self_test(items)
    for item in items:
        item.install()
