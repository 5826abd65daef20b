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
from iotpipe.engine import context_for
from iotpipe.probe import Probe as Probe
from iotpipe.probe import guarded_probe
from iotpipe.probe import run_probe as run_probe
from iotpipe.resources.base import Context, Resource, diff
from iotpipe.target import Deployment
from iotpipe.verdict import Check as Check

UP = "Run 'iotpipe up' to recreate or reconcile it ('iotpipe plan' shows what changes)."


# Field-specific advice where "run up" alone would not say what went wrong.
FIELD_FIXES = {
    ("function", "code_sha256"): "The deployed code is not this checkout's package: "
    "run 'iotpipe up' to deploy it.",
    ("rule", "disabled"): "The rule is disabled, so IoT messages go nowhere: "
    "run 'iotpipe up' to enable it.",
    ("rule", "actions"): "The rule does not send to this deployment's stream with its role: "
    "run 'iotpipe up' to restore the action.",
    ("stream", "encryption"): "The stream is not encrypted at rest with the configured key "
    "(stream.kms_key): run 'iotpipe up' to turn on server-side encryption.",
    ("queue", "sse"): "The failure queue is not encrypted with SSE-SQS: "
    "run 'iotpipe up' to turn it on.",
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
    detail = "; ".join(
        f"{k}: {_short(old)} (expected {_short(new)})" for k, (old, new) in changes.items()
    )
    fix = next((FIELD_FIXES[(res.key, k)] for k in changes if (res.key, k) in FIELD_FIXES), UP)
    return Check(name, False, f"differs from the config: {detail}", fix), current


def _short(value: Any, width: int = 80) -> str:
    text = json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


# --- health checks: one per resource key, run only when the resource exists ------------------


def stream_health(ctx: Context) -> Check:
    summary = ctx.client("kinesis").describe_stream_summary(StreamName=ctx.names.stream)
    status = summary["StreamDescriptionSummary"]["StreamStatus"]
    encrypted = summary["StreamDescriptionSummary"].get("EncryptionType") == "KMS"
    key = summary["StreamDescriptionSummary"].get("KeyId")
    at_rest = f"encrypted at rest with {key}" if encrypted else "NOT encrypted at rest"
    return Check(
        "Kinesis stream is ACTIVE",
        status == "ACTIVE",
        f"{status}, {at_rest}",
        "" if status == "ACTIVE" else "Wait for UPDATING/CREATING to finish, then verify again.",
    )


def table_health(ctx: Context) -> Check:
    table = ctx.client("timestream-write").describe_table(
        DatabaseName=ctx.names.database, TableName=ctx.names.table
    )["Table"]
    status = table.get("TableStatus", "?")
    ret = table.get("RetentionProperties", {})
    detail = (
        f"{status}, memory {ret.get('MemoryStoreRetentionPeriodInHours')} h, "
        f"magnetic {ret.get('MagneticStoreRetentionPeriodInDays')} d"
    )
    ok = status == "ACTIVE"
    return Check("Timestream table is ACTIVE", ok, detail, "" if ok else UP)


def function_health(ctx: Context) -> Check:
    conf = ctx.client("lambda").get_function_configuration(FunctionName=ctx.names.function)
    state, update = conf.get("State", "?"), conf.get("LastUpdateStatus", "?")
    ok = state == "Active" and update == "Successful"
    reason = conf.get("StateReason") or conf.get("LastUpdateStatusReason") or ""
    fix = "" if ok else f"{reason} Run 'iotpipe up' once the cause is fixed.".strip()
    return Check(
        "Lambda function is Active, last update Successful",
        ok,
        f"State {state}, LastUpdateStatus {update}",
        fix,
    )


def mapping_health(ctx: Context) -> Check:
    pages = ctx.client("lambda").list_event_source_mappings(
        FunctionName=ctx.names.function, EventSourceArn=ctx.names.stream_arn
    )
    found: dict[str, Any] = next(iter(pages.get("EventSourceMappings", [])), {})
    state = found.get("State", "?")
    result = found.get("LastProcessingResult", "none yet")
    ok = state == "Enabled" and not str(result).startswith("PROBLEM")
    if state != "Enabled":
        fix = f"The mapping is {state}: run 'iotpipe up' to enable it."
    elif not ok:
        fix = (
            f"The last batch failed: read the function's logs "
            f"(aws logs tail {ctx.names.log_group}) and the failure queue "
            "('iotpipe query quality')."
        )
    else:
        fix = ""
    return Check("Event source mapping is Enabled", ok, f"{state}; last result: {result}", fix)


def queue_depth(ctx: Context) -> Check:
    sqs = ctx.client("sqs")
    url = sqs.get_queue_url(QueueName=ctx.names.queue)["QueueUrl"]
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "SqsManagedSseEnabled",
        ],
    )["Attributes"]
    depth = int(attrs.get("ApproximateNumberOfMessages", 0))
    hidden = int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
    sse = str(attrs.get("SqsManagedSseEnabled", "false")).lower() == "true"
    at_rest = "encrypted at rest (SSE-SQS)" if sse else "NOT encrypted with SSE-SQS"
    detail = f"{depth} message(s) waiting, {hidden} in flight, {at_rest}"
    if depth:
        detail += " (see them with 'iotpipe query quality')"
    return Check("Failure queue depth", True, detail)


HEALTH: dict[str, Callable[[Context], Check]] = {
    "stream": stream_health,
    "timestream": table_health,
    "function": function_health,
    "mapping": mapping_health,
    "queue": queue_depth,
}


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
        health = HEALTH.get(res.key)
        if health and found and found[0] is not None:
            checks.append(safely(res.label, partial(health, ctx)))
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
