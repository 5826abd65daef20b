"""The failure queue and what it stands for: the ``quality`` preset and the probe.

(The function's side, which builds the queue's messages, is ``lambda_handler/quarantine.py``.)

Quarantined messages never reach Timestream. ``quality`` counts them by reason from
CloudWatch metrics (`iotpipe.metrics`: exact and constant-time at any depth) and shows a
bounded sample of the queue for examples, read with VisibilityTimeout=0 so that nothing
is hidden or consumed. The function, the event source mapping and the IoT rule all report
to the queue, each in its own body shape; :class:`Quarantined` classifies them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from iotpipe import metrics
from iotpipe.aws import is_not_found
from iotpipe.errors import IotpipeError
from iotpipe.stores.base import Result, seconds
from iotpipe.target import Deployment
from lambda_handler.reasons import REASONS

OTHER_REASONS = {
    "batch_failure": "the event source mapping gave up on a batch (retries or age exhausted)",
    "rule_error": "the IoT rule did not deliver the publish (payload not a JSON object, "
    "or its Kinesis action failed)",
    "unrecognized": "a message iotpipe did not write",
}
SAMPLE_RECEIVES = 5  # ReceiveMessage calls for the examples: at most 50 messages
SAMPLE_HOLD_S = 10  # how long a sampled message is invisible if we die before releasing it
SAMPLED_ONLY = ("batch_failure", "unrecognized")  # no metric counts these
QUALITY_COLUMNS = ("reason", "count", "devices", "meaning", "example")
QUALITY_TYPES = ("VARCHAR", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR")


@dataclass
class Quarantined:
    """One message on the failure queue, classified by shape."""

    message_id: str
    receipt: str
    sent_ms: int
    body: Any

    @property
    def fields(self) -> dict[str, Any]:
        """The JSON body as a dict ({} for text or other JSON)."""
        return self.body if isinstance(self.body, dict) else {}

    @property
    def reason(self) -> str:
        b = self.fields
        if "reason" in b and b.get("source") == "iotpipe-handler":
            return str(b["reason"])
        if "KinesisBatchInfo" in b:
            return "batch_failure"
        if "ruleName" in b and "failures" in b:
            return "rule_error"
        return "unrecognized"

    @property
    def identity(self) -> tuple[str, ...]:
        """What the message is about: a redelivered record or batch is the same one."""
        b = self.fields
        if b.get("source") == "iotpipe-handler" and b.get("sequenceNumber"):
            return ("record", str(b.get("shardId")), str(b["sequenceNumber"]), self.reason)
        info = b.get("KinesisBatchInfo")
        if isinstance(info, dict) and info.get("startSequenceNumber"):
            start, end = info.get("startSequenceNumber"), info.get("endSequenceNumber")
            return ("batch", str(info.get("shardId")), str(start), str(end))
        return ("message", self.message_id)

    @property
    def device(self) -> str | None:
        dev = self.fields.get("deviceId")
        return dev if isinstance(dev, str) else None

    @property
    def detail(self) -> str:
        b = self.fields
        if "detail" in b:
            return str(b["detail"])
        if self.reason == "batch_failure":
            info = b.get("KinesisBatchInfo", {})
            return f"{info.get('batchSize', '?')} records of {info.get('shardId', '?')}"
        if self.reason == "rule_error":
            return "; ".join(str(f.get("errorMessage", "")) for f in b.get("failures", []))
        return str(self.body)[:200]


@contextmanager
def peek(
    sqs: Any, url: str, *, limit: int = 1000, hold_s: int = 30, wait_s: int = 0
) -> Iterator[list[Quarantined]]:
    """Read up to ``limit`` messages without consuming them.

    Each is held invisible for ``hold_s`` while we read on (so the next receive returns
    other messages, which VisibilityTimeout=0 would not guarantee) and made visible again
    on exit, whatever happens; if this process dies, they reappear after ``hold_s``. Callers
    may delete what they own (the probe does) via :func:`forget`. ``wait_s`` > 0 long-polls,
    which on AWS makes an empty answer mean empty.
    """
    seen: dict[str, Quarantined] = {}
    deadline = time.monotonic() + max(1.0, hold_s / 2)  # before the first ones reappear
    try:
        while len(seen) < limit and time.monotonic() < deadline:
            resp = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                VisibilityTimeout=hold_s,
                WaitTimeSeconds=wait_s,
                MessageSystemAttributeNames=["SentTimestamp"],
            )
            got = [m for m in resp.get("Messages", []) if m["MessageId"] not in seen]
            if not got:  # empty, or only messages seen already: we have them all
                break
            for m in got:
                seen[m["MessageId"]] = _quarantined(m)
        yield list(seen.values())
    finally:
        _release(sqs, url, [q.receipt for q in seen.values() if q.receipt])


def sample(
    sqs: Any, url: str, *, receives: int = SAMPLE_RECEIVES, wait_s: int = 0
) -> list[Quarantined]:
    """Up to ``10 * receives`` distinct messages, each held for SAMPLE_HOLD_S at most.

    Why a hold and not VisibilityTimeout=0: with 0, a queue may answer every receive with
    the same ten (the embedded AWS always does: the oldest), so reasons that came later
    would get no example. Each message is released again (visibility 0) before this
    returns, whatever happens; if this process dies, they reappear after the hold. Nothing
    is consumed (only ApproximateReceiveCount rises, which matters only to a queue with a
    redrive policy, which the failure queue has not). Duplicates - the same message again,
    or a record quarantined again after a redelivery - are kept once. The sample returned
    carries no receipt handles: it cannot delete.
    """
    seen: dict[tuple[str, ...], Quarantined] = {}
    handles: dict[str, str] = {}
    try:
        for _ in range(receives):
            resp = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=SAMPLE_HOLD_S,
                WaitTimeSeconds=wait_s,
                MessageSystemAttributeNames=["SentTimestamp"],
            )
            fresh = [m for m in resp.get("Messages", []) if m["MessageId"] not in handles]
            if not fresh:
                break
            for m in fresh:
                handles[m["MessageId"]] = m["ReceiptHandle"]
                q = _quarantined(m, keep_receipt=False)
                seen.setdefault(q.identity, q)
    finally:
        _release(sqs, url, list(handles.values()))
    return list(seen.values())


def _release(sqs: Any, url: str, handles: list[str]) -> None:
    """Make held messages visible again at once, ten per call (the batch limit)."""
    for i in range(0, len(handles), 10):
        entries = [
            {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0}
            for n, h in enumerate(handles[i : i + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def _quarantined(m: dict[str, Any], keep_receipt: bool = True) -> Quarantined:
    return Quarantined(
        m["MessageId"],
        m["ReceiptHandle"] if keep_receipt else "",
        int(m.get("Attributes", {}).get("SentTimestamp", 0)),
        _loads(m.get("Body", "")),
    )


def forget(sqs: Any, url: str, message: Quarantined) -> None:
    """Delete a peeked message (and do not release it)."""
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message.receipt)
    message.receipt = ""


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def quality(
    messages: list[Quarantined],
    *,
    since: str | None = None,
    device: str | None = None,
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
) -> Result:
    """Quarantined messages grouped by reason, most frequent first."""
    oldest = now_ms() - int(seconds(since) * 1000) if since else 0
    wanted = [q for q in messages if q.sent_ms >= oldest and (device is None or q.device == device)]
    return by_reason(wanted, OTHER_REASONS)


class Refused(Protocol):
    """What :func:`by_reason` reads of a refused message (queued or in the lake)."""

    @property
    def reason(self) -> str: ...

    @property
    def device(self) -> str | None: ...

    @property
    def detail(self) -> str: ...


def by_reason(refused: Iterable[Refused], meanings: Mapping[str, str]) -> Result:
    """Refusals grouped by reason, most frequent first: one table for every store's
    ``quality``. ``meanings`` explains the reasons the transform does not give."""
    groups: dict[str, list[Refused]] = {}
    for r in refused:
        groups.setdefault(r.reason, []).append(r)
    rows = []
    for reason, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        devices = sorted({r.device for r in rs if r.device})
        shown = ", ".join(devices[:5]) + (f" (+{len(devices) - 5})" if len(devices) > 5 else "")
        rows.append(
            {
                "reason": reason,
                "count": len(rs),
                "devices": shown,
                "meaning": REASONS.get(reason) or meanings.get(reason, ""),
                "example": rs[0].detail,
            }
        )
    return Result(list(QUALITY_COLUMNS), list(QUALITY_TYPES), rows)


def queue_url_or_none(sqs: Any, name: str) -> str | None:
    """The queue's URL from SQS; None when there is no such queue."""
    try:
        return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def existing_queue_url(dep: Deployment) -> str:
    """The deployment's failure queue, which must exist to be read (unlike ``up``'s,
    ``resources.common.failure_queue_url``, which may name a queue still to be made)."""
    url = queue_url_or_none(dep.gateway.client("sqs"), dep.names.queue)
    if url is None:
        raise IotpipeError(
            f"The failure queue {dep.names.queue} does not exist: run 'iotpipe up' "
            "(with event_source.failure_queue: true)."
        )
    return url


def long_poll_s(dep: Deployment) -> int:
    """1 s on AWS, where a short poll may miss messages; 0 on a local or test endpoint."""
    return 0 if dep.gateway.local or dep.gateway.endpoint_url else 1


def queue_depth(sqs: Any, url: str) -> tuple[int, int]:
    """(messages on the queue, visible or in flight; its retention in seconds)."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
        "MessageRetentionPeriod",
    ]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names).get("Attributes", {})
    depth = sum(int(attrs.get(n, 0)) for n in names[:3])
    return depth, int(attrs.get("MessageRetentionPeriod", 345_600))


def quarantine_report(dep: Deployment, *, since: str | None, device: str | None) -> Result:
    """``quality``: what was quarantined, by reason; exact counts, sampled examples.

    Without `since`, the window is the queue's retention (what it can still hold).
    With `device`, counts come from the sample: the metrics have no per-device
    dimension (one per device would be a metric per device and reason).
    """
    sqs = dep.gateway.client("sqs")
    url = existing_queue_url(dep)
    depth, retention = queue_depth(sqs, url)
    examples = sample(sqs, url, wait_s=long_poll_s(dep))
    span = seconds(since) if since else retention
    label = f"the last {since}" if since else f"the queue's retention ({_human(retention)})"
    if device is not None:
        result = quality(examples, since=since, device=device)
        result.notes.append(
            f"Counts for one device come from a sample of {len(examples)} of the ~{depth} "
            f"messages on {dep.names.queue} (the metrics have no per-device dimension)."
        )
    else:
        result = _counted(dep, examples, metrics.window(span), since)
        if depth > len(examples) and any(r["reason"] in SAMPLED_ONLY for r in result.rows):
            result.notes.append(
                f"batch_failure and unrecognized have no metric: counted in a sample of "
                f"{len(examples)} of the ~{depth} messages on {dep.names.queue}."
            )
        result.notes.append(
            f"Counted from CloudWatch metrics over {label}; devices and examples from a "
            f"sample of {len(examples)} of the ~{depth} messages on {dep.names.queue}."
        )
    if not result.rows:
        result.notes.append(_nothing_note(label, device, len(examples), depth))
    return result


def _nothing_note(label: str, device: str | None, sampled: int, depth: int) -> str:
    """An empty answer says what it covers: a sample that missed a device is no all-clear."""
    if device is not None and depth > sampled:
        return (
            f"No message from {device} in a sample of {sampled} of the ~{depth} quarantined "
            "messages: it may still have some (the counts per reason, without --device, "
            "are exact; the function's log names the device of each one)."
        )
    return f"Nothing quarantined in {label}: every message was valid, or none was sent."


def _counted(
    dep: Deployment, examples: list[Quarantined], win: metrics.Window, since: str | None
) -> Result:
    """Metric counts per reason, with the sample's devices and examples beside them."""
    cw = dep.gateway.client("cloudwatch")
    counts = metrics.quarantined_by_reason(cw, dep.names.function, win)
    rule = metrics.rule_errors(cw, dep.names.rule, win)
    if rule.total:
        counts["rule_error"] = rule.total
    sampled = quality(examples, since=since)
    by_reason = {r["reason"]: r for r in sampled.rows}
    rows = []
    for reason, count in counts.items():
        row = dict(by_reason.get(reason) or _empty_row(reason))
        row["count"] = count
        if reason == "rule_error":
            row["example"] = "; ".join(x for x in (rule.text(), row["example"]) if x)
        rows.append(row)
    rows += [by_reason[r] for r in SAMPLED_ONLY if r in by_reason]
    rows.sort(key=lambda r: (-r["count"], r["reason"]))
    return Result(sampled.columns, sampled.types, rows)


def _empty_row(reason: str) -> dict[str, Any]:
    meaning = REASONS.get(reason) or OTHER_REASONS.get(reason, "")
    return {"reason": reason, "count": 0, "devices": "", "meaning": meaning, "example": ""}


def _human(secs: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if secs % size == 0:
            return f"{secs // size} {unit}"
    return f"{secs} s"
