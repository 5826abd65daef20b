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
import secrets
import time
from base64 import b64decode
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from iotpipe import quarantine, query, resources
from iotpipe.engine import context_for
from iotpipe.fleet import Message, iso_ms
from iotpipe.resources.base import Context, Resource, diff
from iotpipe.target import Deployment
from iotpipe.traffic import IotSink, KinesisSink, deliver, iot_data_client

UP = "Run 'iotpipe up' to recreate or reconcile it ('iotpipe plan' shows what changes)."


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


# --- the end-to-end probe --------------------------------------------------------------------


@dataclass
class Probe:
    """Two messages marked with ``token``; the invalid one is 1 ms later and out of range."""

    token: str
    device: str
    measure: str
    value: float
    bad_value: float
    when: datetime

    @classmethod
    def for_deployment(cls, dep: Deployment, now: datetime, token: str | None = None) -> Probe:
        cfg = dep.config
        token = token or secrets.token_hex(4)
        device = f"{query.PROBE_DEVICE_PREFIX}{token}"  # the marker every preset leaves out
        measure = "temperature" if "temperature" in cfg.sensors else sorted(cfg.sensors)[0]
        rng = cfg.sensors[measure]
        mid = (rng.min + rng.max) / 2
        unique = round(mid + int(token, 16) % 10**6 / 10**7, 7)
        bad = rng.max + max(1.0, rng.max - rng.min)
        return cls(
            token,
            device,
            measure,
            unique,
            bad,
            now.replace(microsecond=now.microsecond // 1000 * 1000),
        )

    def messages(self) -> list[Message]:
        out = []
        for value, when, invalid in (
            (self.value, self.when, None),
            (self.bad_value, self.when + timedelta(milliseconds=1), "out_of_range"),
        ):
            stamp = iso_ms(when)
            body = {
                "deviceId": self.device,
                "timestamp": stamp,
                self.measure: value,
                "probe": self.token,
            }
            out.append(Message(self.device, json.dumps(body).encode(), stamp, invalid=invalid))
        return out

    def sql(self, dep: Deployment) -> str:
        source = f'"{dep.names.database}"."{dep.names.table}"'
        dev = query.literal(self.device)
        if dep.config.timestream.record_model == "multi":
            return (
                f'SELECT time, "{self.measure}" AS v FROM {source} WHERE DeviceId = {dev} '
                f"AND measure_name = 'metrics' AND time > ago(1h)"
            )
        return (
            f"SELECT time, measure_value::double AS v FROM {source} WHERE DeviceId = {dev} "
            f"AND measure_name = '{self.measure}' AND time > ago(1h)"
        )

    def rows_at(self, rows: list[dict[str, Any]], offset_ms: int) -> list[dict[str, Any]]:
        stamp = iso_ms(self.when + timedelta(milliseconds=offset_ms)).replace("T", " ")[:-1]
        return [r for r in rows if str(r.get("time", "")).startswith(stamp)]

    def mine(self, q: quarantine.Quarantined) -> bool:
        body = q.fields
        text = str(body.get("payload", ""))
        if "payloadBase64" in body:
            text += b64decode(body["payloadBase64"]).decode(errors="replace")
        return self.token in text


def _send(dep: Deployment, probe: Probe, via: str) -> None:
    gw = dep.gateway
    if via == "iot":
        sink: Any = IotSink(iot_data_client(gw), dep.config.iot_rule.topic)
    else:
        sink = KinesisSink(gw.client("kinesis"), dep.names.stream)
    summary = deliver(probe.messages(), sink, workers=1)
    if summary.failed:
        raise RuntimeError(f"could not send the probe messages: {dict(summary.errors)}")


def run_probe(
    dep: Deployment,
    *,
    via: str = "iot",
    timeout_s: float = 180.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    token: str | None = None,
) -> list[Check]:
    """Send the probe pair and poll (backoff 0.5 s x1.5 up to 5 s) until both are seen."""
    probe = Probe.for_deployment(dep, now(), token)
    ts = dep.gateway.client("timestream-query")
    sqs = dep.gateway.client("sqs")
    url = quarantine.failure_queue_url(dep)
    started = clock()
    _send(dep, probe, via)
    valid: list[dict[str, Any]] = []
    quarantined: quarantine.Quarantined | None = None
    delay = 0.5
    while True:
        if not valid:
            valid = probe.rows_at(query.run(ts, probe.sql(dep)).rows, 0)
        if quarantined is None:
            with quarantine.peek(sqs, url, wait_s=quarantine.long_poll_s(dep)) as messages:
                quarantined = next((q for q in messages if probe.mine(q)), None)
                if quarantined is not None:
                    quarantine.forget(sqs, url, quarantined)  # the probe cleans up after itself
        if (valid and quarantined) or clock() - started > timeout_s:
            break
        sleep(delay)
        delay = min(delay * 1.5, 5.0)
    took = f"{clock() - started:.1f} s"
    leaked = probe.rows_at(query.run(ts, probe.sql(dep)).rows, 1)
    return _probe_checks(dep, probe, via, took, valid, leaked, quarantined)


def _probe_checks(
    dep: Deployment,
    probe: Probe,
    via: str,
    took: str,
    valid: list[dict[str, Any]],
    leaked: list[dict[str, Any]],
    quarantined: quarantine.Quarantined | None,
) -> list[Check]:
    """What the probe saw, as checks with a fix for each failure."""
    logs = f"the function's logs (aws logs tail {dep.names.log_group})"
    return [
        Check(
            f"Probe: valid message from {probe.device} is queryable (via {via})",
            bool(valid),
            f"found after {took}" if valid else f"not found after {took}",
            ""
            if valid
            else f"Fix the failed checks above, then read {logs} "
            "and 'iotpipe query quality'; a larger --probe-timeout helps on a cold AWS start.",
        ),
        Check(
            "Probe: invalid message kept out of Timestream",
            not leaked,
            "absent" if not leaked else f"written: {leaked[0]}",
            ""
            if not leaked
            else "The function accepted an out-of-range value: check the "
            "'sensors' ranges in the config and redeploy with 'iotpipe up'.",
        ),
        Check(
            "Probe: invalid message is on the failure queue",
            quarantined is not None,
            f"reason {quarantined.reason}" if quarantined else f"not found after {took}",
            "" if quarantined else f"Check the function's FAILURE_QUEUE_URL and {logs}.",
        ),
    ]


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


def guarded_probe(
    dep: Deployment,
    via: str,
    timeout_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> list[Check]:
    try:
        return run_probe(dep, via=via, timeout_s=timeout_s, sleep=sleep, clock=clock)
    except Exception as exc:  # reported as the probe's result
        return [Check("Probe", False, str(exc), "Fix the cause above and verify again.")]
