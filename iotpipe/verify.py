"""Is the deployment there, as configured, healthy, and does data really flow?

Three layers, each a list of small checks returning a :class:`Check` with the fix spelled
out (verify exits 3 on any failure, so the fix is what a person reads next):

1. *configured*: every enabled resource exists and ``describe()`` matches ``desired()``,
   the same comparison ``plan`` makes (code hash, rule enabled and pointing at the stream
   with the right role, retention, role policies, mapping settings);
2. *healthy*: what a correct configuration can still get wrong at run time (stream ACTIVE,
   table ACTIVE, function Active and its last update Successful, mapping Enabled and its
   last processing result, failure queue depth);
3. *probe* (optional): a uniquely marked valid message and an invalid one go in at the
   front door; the valid one must become queryable, the invalid one must stay out of
   Timestream and show up on the failure queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from iotpipe import resources
from iotpipe.diff import clip_pair, field_leaves
from iotpipe.engine import context_for
from iotpipe.probe import Probe as Probe
from iotpipe.probe import guarded_probe
from iotpipe.probe import run_probe as run_probe
from iotpipe.resources.base import UP, Context, Resource, diff
from iotpipe.target import Deployment
from iotpipe.verdict import Check as Check

MOST_SHOWN = 3  # differing leaves named per resource; `plan` lists them all
# Field-specific advice where "run up" alone would not say what went wrong, as each kind
# declares it (``Resource.fixes``), by (resource key, field).
FIELD_FIXES = {
    (kind.key, field): fix for kind in resources.ALL_KINDS for field, fix in kind.fixes.items()
}


def configured(res: Resource) -> tuple[Check, dict[str, Any] | None]:
    """Exists and matches the config; returns the described properties for health checks."""
    name = f"{res.label} {res.name}"
    current = res.describe()
    if current is None:
        return Check(name, False, "missing", UP), None
    changes = diff(res.desired(), current)
    if not changes:
        return Check(name, True, "exists, configured as expected"), current
    detail = differences(changes)
    fix = next((FIELD_FIXES[(res.key, k)] for k in changes if (res.key, k) in FIELD_FIXES), UP)
    return Check(name, False, f"differs from the config: {detail}", fix), current


def differences(changes: dict[str, tuple[Any, Any]], most: int = MOST_SHOWN) -> str:
    """``path: current (expected desired)`` for each differing leaf, as ``plan`` shows them:
    a whole policy cut at 80 characters used to end before the part that differed."""
    found = [leaf for k, (old, new) in changes.items() for leaf in field_leaves(k, old, new)]
    shown = []
    for path, old, new in found[:most]:
        a, b = clip_pair(_text(old), _text(new))
        shown.append(f"{path}: {a} (expected {b})")
    more = len(found) - most
    return "; ".join(shown) + (f"; and {more} more (see 'iotpipe plan')" if more > 0 else "")


def _text(value: Any) -> Any:
    return json.dumps(value, default=str) if isinstance(value, dict | list) else value


def safely(name: str, check: Callable[[], Check]) -> Check:
    """A check that raised (no permission, service closed) is a failed check, not a crash."""
    try:
        return check()
    except Exception as exc:  # reported to the user as the check's result
        return Check(name, False, str(exc), "Check the credentials' permissions and region.")


def resource_checks(dep: Deployment, ctx: Context | None = None) -> list[Check]:
    ctx = ctx or context_for(dep)
    checks = []
    for res in resources.build(ctx):
        if not res.enabled():
            continue
        found: list[Any] = []

        def run_configured(res: Resource = res, found: list[Any] = found) -> Check:
            check, current = configured(res)
            found.append(current)
            return check

        checks.append(safely(f"{res.label} {res.name}", run_configured))
        if found and found[0] is not None:
            checks += [safely(res.label, partial(health, ctx)) for health in res.health]
    return checks


def verify(
    dep: Deployment,
    *,
    probe: bool = False,
    via: str = "iot",
    timeout_s: float = 180.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[Check]:
    """All checks; the probe only runs when the pipeline's resources passed theirs."""
    checks = resource_checks(dep, context_for(dep, sleep, clock))
    if probe:
        if all(c.ok for c in checks):
            checks += guarded_probe(dep, via, timeout_s, sleep, clock)
        else:
            checks.append(
                Check("Probe", False, "skipped: resource checks failed", "Fix those first.")
            )
    return checks
