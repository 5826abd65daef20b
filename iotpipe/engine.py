"""Plan, apply and destroy: the dependency-ordered, restartable heart of ``up`` and ``down``.

- ``plan`` describes every resource (side by side: they are independent reads) and decides
  create / update (with the diff) / replace / unchanged. It never mutates.
- ``apply`` runs the plan as a DAG: a step starts as soon as the steps it depends on are
  done, so the queue, stream, Timestream and roles are made at the same time, and the slow
  waits (stream ACTIVE, IAM propagation) overlap. State is written after *every* step, so a
  failure or Ctrl-C midway orphans nothing; re-running ``up`` picks up where it stopped
  because the plan is recomputed from what exists.
- ``destroy`` runs the same DAG in reverse; NotFound counts as done, so it can follow a
  half-finished ``up`` and can be repeated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from botocore.exceptions import ClientError

from iotpipe import resources, storecheck
from iotpipe.aws import error_code, error_message
from iotpipe.diff import Leaf, as_json, field_leaves
from iotpipe.errors import IotpipeError, UsageError
from iotpipe.resources.base import Context, Resource, diff
from iotpipe.resources.legacy import LEGACY_RETIRED_MESSAGE, legacy_available, migration_notes
from iotpipe.resources.registry import check_dependencies
from iotpipe.target import Deployment


class Action(StrEnum):
    """What a plan step does; the values are ``plan -o json``'s (public) strings."""

    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    NOOP = "unchanged"
    DELETE = "delete"
    ABSENT = "absent"


CREATE, UPDATE, REPLACE, NOOP, DELETE, ABSENT = Action
MUTATING = frozenset({CREATE, UPDATE, REPLACE, DELETE})

Status = Literal["pending", "running", "done", "failed", "skipped"]
# (step, status, detail) -> None, called as each step moves on.
EventHook = Callable[["Step", Status, str], None]


@dataclass
class Step:
    """One resource's part in a plan or a teardown."""

    resource: Resource
    action: Action
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    current: dict[str, Any] | None = None
    status: Status = "pending"
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    # Parts the config no longer names, kept by ``up`` (see ``Resource.strays``).
    kept: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.resource.key

    @property
    def label(self) -> str:
        return self.resource.label

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def visible(self) -> bool:
        """Worth showing: an optional resource that is off and absent is not."""
        return self.action != ABSENT or self.resource.enabled()

    def elapsed(self, now: float) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or now) - self.started

    def leaves(self) -> list[Leaf]:
        """Each changed field as the leaves that differ: ``environment.TIMESTREAM_TABLE``."""
        return [leaf for k, (o, n) in self.changes.items() for leaf in field_leaves(k, o, n)]

    @property
    def notes(self) -> list[str]:
        holder = getattr(self.resource, "stray_holder", "resource")
        return [
            f"kept: {item} (no longer in the config; `down` deletes it with the {holder})"
            for item in self.kept
        ]

    def as_dict(self) -> dict[str, Any]:
        """For ``plan -o json``: each change is ``{old, new}`` whole, as before, plus
        ``detail``, the leaves that differ (``[{path, old, new}]``, null for absent)."""
        changes = {
            k: {
                "old": o,
                "new": n,
                "detail": [
                    {"path": p, "old": as_json(a), "new": as_json(b)}
                    for p, a, b in field_leaves(k, o, n)
                ],
            }
            for k, (o, n) in self.changes.items()
        }
        return {
            "resource": self.key,
            "kind": self.label,
            "name": self.name,
            "action": str(self.action),
            "changes": changes,
            "kept": list(self.kept),
        }


@dataclass
class Plan:
    steps: list[Step]

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action in MUTATING]

    @property
    def notes(self) -> list[str]:
        """What ``plan`` and ``up`` tell the user besides the actions (not changes)."""
        return [note for s in self.steps for note in s.notes]

    def as_dict(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.steps]


def context_for(
    deployment: Deployment,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Context:
    return Context(deployment.config, deployment.names, deployment.gateway, sleep, clock)


def check_legacy(ctx: Context) -> None:
    """Stop before any change if the legacy step is asked for but cannot exist any more."""
    if not ctx.config.legacy.enabled:
        return
    if not legacy_available():
        notes = "\n".join(f"  - {n}" for n in migration_notes(ctx.config))
        raise UsageError(
            f"{LEGACY_RETIRED_MESSAGE}\nNothing was changed. Set 'legacy.enabled: false'; "
            f"the recipe's legacy steps map to this pipeline as follows:\n{notes}"
        )


class Engine:
    def __init__(
        self,
        deployment: Deployment,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_workers: int = 6,
    ) -> None:
        self.deployment = deployment
        self.ctx = context_for(deployment, sleep, clock)
        self.resources = resources.build(self.ctx)
        keys = [r.key for r in self.resources]
        for res in self.resources:
            # A typo in depends_on would otherwise drop the edge silently (and the order).
            check_dependencies(res.key, res.depends_on, keys)
        self.max_workers = max_workers
        self.clock = clock

    # --- plan ---------------------------------------------------------------------------

    def plan(self) -> Plan:
        storecheck.before_change(self.ctx, self.resources, check_legacy)
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="describe") as pool:
            found = list(pool.map(lambda res: (res.describe(), res.strays()), self.resources))
        steps = []
        for res, (current, strays) in zip(self.resources, found, strict=True):
            step = self._decide(res, current)
            step.kept = strays
            steps.append(step)
        return Plan(steps)

    @staticmethod
    def _decide(res: Resource, current: dict[str, Any] | None) -> Step:
        if not res.enabled():
            return Step(res, DELETE if current is not None else ABSENT, current=current)
        if current is None:
            # What a reviewer must see even for a new resource (e.g. its encryption).
            want = res.desired() if res.shown_on_create else {}
            shown = {k: (None, want[k]) for k in res.shown_on_create if k in want}
            return Step(res, CREATE, shown)
        changes = diff(res.desired(), current)
        if not changes:
            return Step(res, NOOP, current=current)
        action = REPLACE if set(changes) & res.replace_on else UPDATE
        return Step(res, action, changes, current)

    # --- apply --------------------------------------------------------------------------

    def apply(
        self, plan: Plan | None = None, on_event: EventHook | None = None
    ) -> dict[str, dict[str, Any]]:
        """Bring AWS to the config. Returns outputs (names, ARNs, ids) per resource."""
        plan = plan or self.plan()
        state = self.deployment.state
        names = self.deployment.names
        state.set(
            name=names.name,
            suffix=names.suffix,
            target=self.ctx.config.target,
            region=names.region,
            account=names.account,
            partition=names.partition,
            deployment=names.deployment,
        )
        forward = [s for s in plan.steps if s.action != DELETE]
        self._run_dag(forward, self._forward_deps(forward), self._apply_step, on_event)
        # Resources switched off in the config go last, after their users were updated.
        removals = [s for s in plan.steps if s.action == DELETE]
        if removals:
            self._run_dag(removals, self._reverse_deps(removals), self._delete_step, on_event)
        return dict(self.ctx.outputs)

    def _apply_step(self, step: Step) -> None:
        res = step.resource
        if step.action == ABSENT:
            return
        if step.action == NOOP:
            out = res.outputs(step.current)
        elif step.action == CREATE:
            out = res.create()
        elif res.recreates(step.changes):  # REPLACE, or an update the service cannot do
            res.delete()
            self.deployment.state.record(res.key, None)
            out = res.create()
        else:
            out = res.update(step.current or {}, step.changes)
        self.ctx.outputs[res.key] = out
        self.deployment.state.record(res.key, out)

    def _delete_step(self, step: Step) -> None:
        deleted = step.resource.delete()
        step.action = DELETE if deleted else ABSENT
        self.ctx.outputs.pop(step.key, None)
        self.deployment.state.record(step.key, None)

    # --- destroy ------------------------------------------------------------------------

    def strays(self) -> dict[str, list[str]]:
        """What ``destroy`` deletes beyond what the config names, per resource key (for
        ``down``'s confirmation): e.g. {"timestream": ["table sensor-data"]}."""
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="describe") as pool:
            found = list(pool.map(lambda res: res.strays(), self.resources))
        return {r.key: s for r, s in zip(self.resources, found, strict=True) if s}

    def destroy(
        self, on_event: EventHook | None = None, strays: dict[str, list[str]] | None = None
    ) -> list[dict[str, Any]]:
        """Delete everything this deployment may have made, in reverse dependency order.

        Each report entry's ``also`` lists the strays deleted with it (``strays`` as
        :meth:`strays` returned it, if the caller already asked)."""
        strays = self.strays() if strays is None else strays
        steps = [Step(r, DELETE) for r in self.resources]
        try:
            self._run_dag(steps, self._reverse_deps(steps), self._delete_step, on_event)
        except StepFailed as exc:
            exc.command = "down"
            raise
        self.deployment.state.delete()
        return [
            {
                "resource": s.key,
                "kind": s.label,
                "name": s.name,
                "deleted": s.action == DELETE,
                "also": strays.get(s.key, []) if s.action == DELETE else [],
            }
            for s in steps
        ]

    # --- the DAG runner -----------------------------------------------------------------

    def _forward_deps(self, steps: list[Step]) -> dict[str, set[str]]:
        keys = {s.key for s in steps}
        return {s.key: set(s.resource.depends_on) & keys for s in steps}

    def _reverse_deps(self, steps: list[Step]) -> dict[str, set[str]]:
        """A resource may go once everything that depends on it has gone."""
        keys = {s.key for s in steps}
        deps: dict[str, set[str]] = {k: set() for k in keys}
        for res in self.resources:
            for dep in res.depends_on:
                if dep in keys and res.key in keys:
                    deps[dep].add(res.key)
        return deps

    def _run_dag(
        self,
        steps: list[Step],
        deps: dict[str, set[str]],
        run: Callable[[Step], None],
        on_event: EventHook | None,
    ) -> None:
        emit = on_event or (lambda step, status, detail: None)
        pending = {s.key: s for s in steps}
        done: set[str] = set()
        failed: list[Step] = []
        running: dict[Future[None], Step] = {}
        for s in steps:
            emit(s, "pending", "")
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="step") as pool:
            while pending or running:
                if not failed:
                    for key in [k for k, s in pending.items() if deps[k] <= done]:
                        step = pending.pop(key)
                        step.status, step.started = "running", self.clock()
                        emit(step, "running", "")
                        running[pool.submit(run, step)] = step
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    step = running.pop(fut)
                    step.finished = self.clock()
                    exc = fut.exception()
                    if exc is None:
                        step.status = "done"
                        done.add(step.key)
                        emit(step, "done", "")
                    else:
                        step.status, step.error = "failed", _explain(exc)
                        step.exception = exc  # type: ignore[attr-defined]
                        failed.append(step)
                        emit(step, "failed", step.error)
        for step in pending.values():
            step.status = "skipped"
            emit(step, "skipped", "not started: an earlier step failed")
        if failed:
            first = failed[0]
            raise StepFailed(failed, first.exception)  # type: ignore[attr-defined]


class StepFailed(IotpipeError):
    """Some steps failed; what was done is recorded, so the command can be re-run once the
    cause is fixed. ``command`` ("up" or "down") decides the advice: after a failed
    ``down``, "or 'iotpipe down'" would send the user round in a circle."""

    def __init__(self, steps: list[Step], cause: BaseException, command: str = "up") -> None:
        super().__init__()
        self.steps = steps
        self.cause = cause
        self.command = command

    def __str__(self) -> str:
        lines = "; ".join(f"{s.label} {s.name}: {(s.error or '').rstrip('. ')}" for s in self.steps)
        if self.command == "down":
            return (
                f"{lines}. What was deleted is recorded. {_fix_hint(self.cause)}, then run "
                "'iotpipe down' again: it skips what is already gone and deletes the rest."
            )
        return (
            f"{lines}. What was done is recorded; fix the cause and run the command again "
            "to continue, or 'iotpipe down' to remove everything."
        )


def _fix_hint(exc: BaseException) -> str:
    """What to fix before repeating ``down``, from the kind of error AWS gave."""
    code = error_code(exc) if isinstance(exc, ClientError) else ""
    op = getattr(exc, "operation_name", "the delete")
    if "AccessDenied" in code or code in {"UnauthorizedException", "UnauthorizedOperation"}:
        return f"Allow {op} for these credentials (or run 'down' with ones that may)"
    if "Throttl" in code or code in {"LimitExceededException", "TooManyRequestsException"}:
        return "AWS is throttling: wait a minute"
    if code in {"ResourceInUseException", "ConflictException", "ValidationException"}:
        return (
            f"AWS refused {op} in the resource's current state (the message above says why): "
            "change that state, e.g. in the AWS console"
        )
    return "Fix the cause above"


def _explain(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return f"{exc.operation_name}: {error_code(exc)}: {error_message(exc)}"
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, IotpipeError) else str(exc)
