"""Install only some modules' moto patches for one test, and take them out again.

`patches.apply()` installs every change for the rest of the process, which would change
what later tests see of moto alone (tests/unit/local/test_local_patches.py measures it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from iotpipe.local.patches import all_patches, services


@contextmanager
def installed(*modules: ModuleType) -> Iterator[None]:
    names = {m.__name__ for m in modules}
    chosen = [p for p in all_patches() if getattr(p.replacement, "__module__", "") in names]
    assert chosen, f"no patches in {sorted(names)}"
    mine = [
        p for p in chosen if p.installed is None or p.owner.__dict__.get(p.attr) is not p.installed
    ]
    added = [
        a
        for s in services()
        for a in s.additions
        if _module(a.value) in names and a.attr not in a.owner.__dict__
    ]
    for p in mine:
        p.install()
    for a in added:
        a.install()
    try:
        yield
    finally:
        for a in added:
            delattr(a.owner, a.attr)
        for p in mine:
            if p.original is None:
                delattr(p.owner, p.attr)
            else:
                setattr(p.owner, p.attr, p.original)
            p.installed = None


def _module(value: Any) -> str:
    """Where an addition was written (a property's getter's module)."""
    return str(getattr(value.fget if isinstance(value, property) else value, "__module__", ""))
