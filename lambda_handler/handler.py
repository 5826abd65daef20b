"""The Lambda entry point: Kinesis batch -> Timestream, quarantine, retry.

Handler string: `lambda_handler.handler.lambda_handler`. The event source mapping must
have `FunctionResponseTypes=["ReportBatchItemFailures"]`.

Every record of a batch ends in exactly one state:
- written: all its valid measures are in Timestream (measures refused by validation or
  by Timestream also get a quarantine entry; the message still counts as written);
- quarantined: it is invalid or Timestream refused it for good, and the quarantine
  queue has it (or, with no queue configured, the log has it);
- retry: its write failed transiently, or its quarantine entry could not be sent
  (queue outage) - its sequence number is returned in `batchItemFailures`, so Kinesis
  redelivers it rather than losing it.
Lambda resumes from the lowest sequence number reported and redelivers everything
after it; rewriting those records is harmless because each record carries the event's
own time (an identical rewrite is accepted by Timestream). Quarantine is at-least-once:
a redelivered invalid message is quarantined again, with the same shard and sequence
number, so consumers can deduplicate.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import Any

from . import decode, notices, quarantine, reasons, records, report, validate, writer
from . import settings as settings_module
from .model import Reading, Rejection
from .quarantine import Entry
from .reasons import Problem
from .settings import Settings

DEFAULT_DATABASE = "iot-sensor-db"  # the recipe's defaults
DEFAULT_TABLE = "sensor-data"


class Fate(Enum):
    """The one state each record of a batch ends in (see the module docstring)."""

    WRITTEN = "written"
    QUARANTINED = "quarantined"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Target:
    """Where data goes: the Timestream table and the optional quarantine queue."""

    database: str = DEFAULT_DATABASE
    table: str = DEFAULT_TABLE
    queue_url: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Target:
        """TIMESTREAM_DATABASE (or the recipe's DB_NAME), TIMESTREAM_TABLE, FAILURE_QUEUE_URL."""
        env = os.environ if environ is None else environ
        return cls(
            database=env.get("TIMESTREAM_DATABASE") or env.get("DB_NAME") or DEFAULT_DATABASE,
            table=env.get("TIMESTREAM_TABLE") or DEFAULT_TABLE,
            queue_url=env.get("FAILURE_QUEUE_URL") or None,
        )


@dataclass(slots=True)
class InvocationResult:
    """The result of one batch: the accounting, the retries and the quarantine entries."""

    summary: report.BatchSummary
    failures: list[str]
    entries: list[Entry] = field(default_factory=list)

    def response(self) -> dict[str, Any]:
        """The partial-batch response Lambda expects."""
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq in self.failures]}


_settings: Settings | None = None
_clock: Callable[[], float] = time.time  # the container's clock; tests replace it


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """Thin shell: settings, clients and clock from the container; the work in process()."""
    global _settings
    if _settings is None:
        _settings = settings_module.load()
    target = Target.from_environ()
    name = report.function_name_of(context, "iotpipe")
    result = process(
        event,
        _settings,
        timestream=writer.cached_client("timestream-write"),
        sqs=writer.cached_client("sqs") if target.queue_url else None,
        target=target,
        clock=_clock,
        function_name=name,
    )
    return result.response()


def process(
    event: Any,
    settings: Settings,
    *,
    timestream: Any,
    sqs: Any | None,
    target: Target,
    clock: Callable[[], float],
    executor: Executor | None = None,
    log: report.Log | None = None,
    function_name: str = "iotpipe",
) -> InvocationResult:
    """Validate, write and quarantine one Kinesis batch; every record is accounted for.

    Writes and the quarantine of invalid messages run side by side in `executor`; the
    quarantine entries that depend on Timestream's answer follow.
    """
    log = log or report.Log()
    pool = executor or writer.shared_executor()
    now_ms = int(clock() * 1000)
    items = _items(event, log)
    readings, rejections = _evaluate(items, settings, now_ms)

    # Stage 1, side by side: quarantine what is invalid, write what is valid.
    early = [
        quarantine.make_entry(r.item, r.problem, r.device_id, r.rejected, False, now_ms)
        for r in rejections
    ]
    early_sent = _dispatch(early, sqs, target.queue_url, pool, log)
    requests = records.plan_requests(readings, settings.record_model)
    writes = _fan_out(
        pool,
        [
            partial(writer.write, timestream, target.database, target.table, request)
            for request in requests
        ],
    )
    failed, refused, records_written, errors = _collect_writes(readings, requests, writes)

    # Stage 2: what Timestream said decides the rest; refused measures are quarantined.
    status: dict[int, Fate] = {}
    late, late_status = _settle(readings, failed, refused, status, now_ms)
    late_sent = _dispatch(late, sqs, target.queue_url, pool, log)
    lost = _collect_sends(early_sent)
    lost_late = _collect_sends(late_sent)
    for position, entry in enumerate(early):
        status[entry.item.index] = Fate.RETRY if position in lost else Fate.QUARANTINED
    for position, entry in enumerate(late):
        status[entry.item.index] = Fate.RETRY if position in lost_late else late_status[position]

    delivered = [e for p, e in enumerate(early) if p not in lost]
    delivered += [e for p, e in enumerate(late) if p not in lost_late]
    summary = _summarise(items, status, delivered, records_written, len(requests))
    _log_problems(log, errors, len(failed), len(lost) + len(lost_late), delivered)
    _log_summary(log, summary, items, function_name, now_ms)
    retry = sorted((i for i in items if status[i.index] == Fate.RETRY), key=lambda i: i.seq_key)
    return InvocationResult(summary, [i.sequence_number for i in retry], delivered)


def _evaluate(
    items: list[decode.Item], settings: Settings, now_ms: int
) -> tuple[list[Reading], list[Rejection]]:
    """Each message becomes a Reading (to write) or a Rejection (to quarantine)."""
    readings: list[Reading] = []
    rejections: list[Rejection] = []
    for item in items:
        result = validate.evaluate(item, settings, now_ms)
        if type(result) is Reading:
            readings.append(result)
        else:
            rejections.append(result)
    return readings, rejections


def _log_problems(
    log: report.Log, errors: set[str], failed: int, unsent: int, delivered: list[Entry]
) -> None:
    """WARNING lines: failed writes and sends, then one per quarantined message (capped)."""
    if errors:
        log.warning("write_failed", errors=sorted(errors)[:5], messages=failed)
    if unsent:
        log.warning("quarantine_send_failed", messages=unsent)
    notices.log_quarantined(log, delivered)


def _items(event: Any, log: report.Log) -> list[decode.Item]:
    """The batch's records, or - for an event no Kinesis mapping would send - one
    ERROR line and a ValueError saying what is wrong (see decode.MalformedEvent)."""
    try:
        return decode.items_of(event)
    except decode.MalformedEvent as exc:
        message = (
            f"not a Kinesis event: {exc}. This function reads batches from a Kinesis "
            "event source mapping; nothing was written or quarantined"
        )
        log.error("malformed_event", error=message)
        raise decode.MalformedEvent(message) from None


def _settle(
    readings: list[Reading],
    failed: set[int],
    refused: dict[int, dict[str, Problem]],
    status: dict[int, Fate],
    now_ms: int,
) -> tuple[list[Entry], list[Fate]]:
    """Status of each reading after the writes, and the quarantine entries still owed.

    A reading with any transiently failed record is retried whole (its written records
    will be rewritten identically). One whose every measure Timestream refused is
    quarantined; one with only some measures refused (by validation or by Timestream)
    is written, and its refused measures get a `partial` quarantine entry.
    """
    late: list[Entry] = []
    late_status: list[Fate] = []
    for index, reading in enumerate(readings):
        if index in failed:
            status[reading.item.index] = Fate.RETRY
            continue
        by_timestream = refused.get(index, {})
        rejected = {**reading.rejected, **by_timestream}
        if not rejected:
            status[reading.item.index] = Fate.WRITTEN
            continue
        whole = len(by_timestream) == len(reading.measures)
        problem = next(iter((by_timestream if whole else rejected).values()))
        late.append(
            quarantine.make_entry(
                reading.item, problem, reading.device_id, rejected, not whole, now_ms
            )
        )
        late_status.append(Fate.QUARANTINED if whole else Fate.WRITTEN)
    return late, late_status


def _summarise(
    items: list[Any],
    status: dict[int, Fate],
    delivered: list[Entry],
    records_written: int,
    write_requests: int,
) -> report.BatchSummary:
    """Count the final states; refused measures count only for messages written."""
    counts = Counter(status.values())
    summary = report.BatchSummary(
        received=len(items),
        written=counts[Fate.WRITTEN],
        quarantined=counts[Fate.QUARANTINED],
        retry=counts[Fate.RETRY],
        records_written=records_written,
        write_requests=write_requests,
    )
    for entry in delivered:
        summary.reasons[entry.reason] = summary.reasons.get(entry.reason, 0) + 1
        if entry.doc["partial"] and status[entry.item.index] == Fate.WRITTEN:
            summary.measures_rejected += len(entry.doc.get("rejectedMeasures", {}))
    return summary


def _collect_writes(
    readings: list[Reading], requests: list[records.Request], futures: list[Future]
) -> tuple[set[int], dict[int, dict[str, Problem]], int, set[str]]:
    """Per reading: did any record fail transiently; which measures Timestream refused."""
    failed: set[int] = set()
    refused: dict[int, dict[str, Problem]] = {}
    errors: set[str] = set()
    written = 0
    for request, future in zip(requests, futures, strict=True):
        result = future.result()
        for position, (index, name) in enumerate(request.owners):
            if position in result.failed:
                failed.add(index)
                errors.add(result.failed[position])
            elif position in result.rejected:
                problem = Problem(reasons.REJECTED_BY_TIMESTREAM, result.rejected[position])
                names = [name] if name is not None else list(readings[index].measures)
                refused.setdefault(index, {}).update(dict.fromkeys(names, problem))
            else:
                written += 1
    return failed, refused, written, errors


def _fan_out(pool: Executor, calls: list[Callable[[], Any]]) -> list[Future]:
    """Run `calls` side by side: all but the first in the pool, the first right here.

    The calling thread would otherwise only wait; doing one request itself saves a
    thread hand-off per batch (and GIL contention) at the default batch size of 100,
    where a batch is a single request.
    """
    futures = [pool.submit(call) for call in calls[1:]]
    if calls:
        futures.insert(0, writer.InlineExecutor().submit(calls[0]))
    return futures


def _dispatch(
    entries: list[Entry], sqs: Any | None, queue_url: str | None, pool: Executor, log: report.Log
) -> list[tuple[list[int], Future]]:
    """Start sending `entries` to the queue; with no queue, log them (WARNING) instead."""
    if not entries:
        return []
    if sqs is None or not queue_url:
        for entry in entries:
            log.warning("quarantined", entry=entry.doc)
        return []
    return [
        (batch, pool.submit(quarantine.send, sqs, queue_url, entries, batch))
        for batch in quarantine.pack(entries)
    ]


def _collect_sends(sent: list[tuple[list[int], Future]]) -> set[int]:
    """Positions of entries that did not reach the queue."""
    lost: set[int] = set()
    for _, future in sent:
        lost |= future.result()
    return lost


def _log_summary(
    log: report.Log, summary: report.BatchSummary, items: list[Any], function_name: str, now_ms: int
) -> None:
    """The accounting line, then the same counts as EMF (always emitted, any log level)."""
    extra: dict[str, Any] = {}
    if items:  # a Kinesis batch comes from one shard, in sequence order
        extra = {
            "shardId": items[0].shard_id,
            "firstSequenceNumber": items[0].sequence_number,
            "lastSequenceNumber": items[-1].sequence_number,
        }
    if summary.balanced:
        log.info("batch_summary", **summary.fields(), **extra)
    else:  # unreachable by construction; loud if a change ever breaks it
        log.error("batch_summary", **summary.fields(), **extra)
    log.emit(report.dumps(report.emf(summary, function_name, now_ms)))
    for doc in report.reason_emf(summary, function_name, now_ms):
        log.emit(report.dumps(doc))
