"""moto's backend registries as a whole: what the control-plane snapshot saves and restores.

A sibling of `motointernals` (same rules: every moto import and private attribute in one
place, reviewed on a moto upgrade). moto keeps every service's state in one
``BackendDict`` per service (``{account: {region: backend}}``) and lists the ones in use
in ``BackendDict._instances``, and every model instance in its class's
``instances_tracked`` (`serverpatch` turns that off); the snapshot pickles the backends of those, named by the
module attribute that holds the dict, and restore puts them back into the same dicts.
"""

from __future__ import annotations

import importlib
from typing import Any

from iotpipe.local.patching import moto_imports

with moto_imports():
    from moto.core.base_backend import BackendDict, backend_lock
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import reset_model_data

__all__ = ["BaseModel", "forget_tracked_instances", "registries"]

Registry = tuple[str, str, dict[str, dict[str, Any]]]  # (module, attribute, backends)


def _name_of(bd: Any) -> tuple[str, str] | None:
    """(module, attribute) under which the backend dict is importable, None if not found."""
    module = importlib.import_module(bd.backend.__module__)
    for attr, value in vars(module).items():
        if value is bd:
            return module.__name__, attr
    return None


def registries() -> list[Registry]:
    """Every backend moto created so far, grouped by the dict that holds it (shallow)."""
    found: list[Registry] = []
    with backend_lock:
        instances: list[Any] = list(BackendDict._instances)  # type: ignore[misc]
    for bd in instances:
        named = _name_of(bd)
        if named is None:
            continue
        backends = {account: dict(dict.items(regions)) for account, regions in list(dict.items(bd))}
        if any(backends.values()):
            found.append((named[0], named[1], backends))
    return found


def restore(saved: list[Registry]) -> int:
    """Put saved backends back into moto's dicts (replacing any); the number restored."""
    count = 0
    for module_name, attr, backends in saved:
        bd = getattr(importlib.import_module(module_name), attr)
        for account, regions in backends.items():
            bd._create_account_specific_backend(account)
            per_account = dict.__getitem__(bd, account)
            for region, backend in regions.items():
                dict.__setitem__(per_account, region, backend)
                count += 1
    return count


def forget_tracked_instances() -> None:
    """Empty moto's lists of every model instance made so far (`serverpatch` stops new ones)."""
    reset_model_data()
