"""The failure queue, read without consuming it: the ``quality`` preset and the probe.

Quarantined messages never reach Timestream, so what was rejected, and why, is read from
the queue the function, the event source mapping and the IoT rule all report to. Each writer
has its own body shape; :class:`Quarantined` classifies them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from iotpipe.aws import is_not_found
from iotpipe.errors import IotpipeError
from iotpipe.query import Result, seconds
from iotpipe.target import Deployment
from lambda_handler.reasons import REASONS

OTHER_REASONS = {
    "batch_failure": "the event source mapping gave up on a batch (retries or age exhausted)",
    "rule_error": "the IoT rule could not put the message on the stream",
    "unrecognized": "a message iotpipe did not write",
}


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
    try:
        while len(seen) < limit:
            resp = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                VisibilityTimeout=hold_s,
                WaitTimeSeconds=wait_s,
                MessageSystemAttributeNames=["SentTimestamp"],
            )
            got = resp.get("Messages", [])
            if not got:
                break
            for m in got:
                seen[m["MessageId"]] = Quarantined(
                    m["MessageId"],
                    m["ReceiptHandle"],
                    int(m.get("Attributes", {}).get("SentTimestamp", 0)),
                    _loads(m.get("Body", "")),
                )
        yield list(seen.values())
    finally:
        handles = [q.receipt for q in seen.values() if q.receipt]
        for i in range(0, len(handles), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for n, h in enumerate(handles[i : i + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


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
    groups: dict[str, list[Quarantined]] = {}
    for q in messages:
        if q.sent_ms >= oldest and (device is None or q.device == device):
            groups.setdefault(q.reason, []).append(q)
    rows = []
    for reason, qs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        devices = sorted({q.device for q in qs if q.device})
        shown = ", ".join(devices[:5]) + (f" (+{len(devices) - 5})" if len(devices) > 5 else "")
        rows.append(
            {
                "reason": reason,
                "count": len(qs),
                "devices": shown,
                "meaning": REASONS.get(reason) or OTHER_REASONS.get(reason, ""),
                "example": qs[0].detail,
            }
        )
    columns = ["reason", "count", "devices", "meaning", "example"]
    types = ["VARCHAR", "BIGINT", "VARCHAR", "VARCHAR", "VARCHAR"]
    return Result(columns, types, rows)


def failure_queue_url(dep: Deployment) -> str:
    sqs = dep.gateway.client("sqs")
    try:
        return str(sqs.get_queue_url(QueueName=dep.names.queue)["QueueUrl"])
    except ClientError as exc:
        if is_not_found(exc):
            raise IotpipeError(
                f"The failure queue {dep.names.queue} does not exist: run 'iotpipe up' "
                "(with event_source.failure_queue: true)."
            ) from None
        raise


def long_poll_s(dep: Deployment) -> int:
    """1 s on AWS, where a short poll may miss messages; 0 on a local or test endpoint."""
    return 0 if dep.gateway.local or dep.gateway.endpoint_url else 1


def quarantine_report(
    dep: Deployment, *, since: str | None, device: str | None, limit: int = 1000
) -> Result:
    """``quality``: what the failure queue holds, by reason (peeked, not consumed)."""
    sqs = dep.gateway.client("sqs")
    url = failure_queue_url(dep)
    with peek(sqs, url, limit=limit, wait_s=long_poll_s(dep)) as messages:
        result = quality(messages, since=since, device=device)
    if len(messages) >= limit:
        result.notes.append(f"Counted the first {limit} messages on {dep.names.queue} only.")
    if not result.rows:
        window = f" in the last {since}" if since else ""
        result.notes.append(
            f"Nothing quarantined{window} on {dep.names.queue}: every message was valid, "
            "or none was sent."
        )
    return result
