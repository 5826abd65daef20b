"""How one Kinesis batch is retried, bisected and given up on: pure, so it is unit-tested.

This mirrors Lambda's documented stream semantics:
- a batch succeeds as a whole, or (with ReportBatchItemFailures) partially: Lambda
  checkpoints before the lowest reported sequence number and retries from there;
- on a function error, BisectBatchOnFunctionError splits the batch in two (the halves
  run in order; splitting does not consume the retry quota); a batch that cannot be
  split is retried until MaximumRetryAttempts (-1: forever) is used up;
- records older than MaximumRecordAgeInSeconds (-1: no limit) are discarded unseen;
- every discarded group goes to the OnFailure destination (`on_discard`), so each record
  ends up either processed or reported: nothing is lost.
The shard stays blocked while its batch retries, as on AWS.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

RETRIES_EXHAUSTED = "RetryAttemptsExhausted"
AGE_EXCEEDED = "RecordAgeExceeded"


@dataclass(frozen=True)
class StreamRecord:
    """One Kinesis record as the poller hands it to the function."""

    seq: int
    data: str  # base64, as Kinesis stores it
    partition_key: str
    arrival: float  # epoch seconds


@dataclass(frozen=True)
class RetryPolicy:
    """The mapping settings that govern failures."""

    max_retries: int = -1
    max_age_s: int = -1
    bisect: bool = False
    report_item_failures: bool = False

    def exhausted(self, retries: int) -> bool:
        return self.max_retries >= 0 and retries >= self.max_retries


@dataclass(frozen=True)
class BatchOutcome:
    """What one invocation meant for its batch."""

    kind: Literal["ok", "partial", "error"]
    failed_from: int = 0  # partial: index (in the batch) of the lowest failed record
    function_error: str | None = None  # "Unhandled" for errors/timeouts/crashes
    message: str = ""


@dataclass
class Discard:
    """Records given up on, with why and how often they were tried."""

    records: list[StreamRecord]
    condition: str
    invoke_count: int
    last: BatchOutcome | None = None


@dataclass
class BatchResult:
    done_seq: int | None = None  # last sequence number processed or discarded
    invocations: int = 0
    errors: int = 0
    completed: bool = True
    discards: list[Discard] = field(default_factory=list)


def interpret(
    ok: bool, payload: Any, batch: list[StreamRecord], report_item_failures: bool, error: str = ""
) -> BatchOutcome:
    """Turn an invocation result into a BatchOutcome, following the partial-batch rules.

    Success: no batchItemFailures, null or []. Whole-batch failure: a function error, or
    an entry whose itemIdentifier is missing/empty/misspelled or not in the batch.
    """
    if not ok:
        return BatchOutcome("error", function_error="Unhandled", message=error)
    if not report_item_failures or not isinstance(payload, dict):
        return BatchOutcome("ok")
    failures = payload.get("batchItemFailures")
    if not failures:
        return BatchOutcome("ok")
    if not isinstance(failures, list):
        return BatchOutcome("error", message="batchItemFailures is not a list")
    index = {str(r.seq): i for i, r in enumerate(batch)}
    positions = []
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or str(ident) not in index:
            return BatchOutcome("error", message=f"invalid batchItemFailures entry {item!r}")
        positions.append(index[str(ident)])
    return BatchOutcome("partial", failed_from=min(positions), message="partial batch failure")


def run_batch(
    records: list[StreamRecord],
    invoke: Callable[[list[StreamRecord]], BatchOutcome],
    policy: RetryPolicy,
    now: Callable[[], float],
    on_discard: Callable[[Discard], None] = lambda d: None,
    keep_going: Callable[[], bool] = lambda: True,
) -> BatchResult:
    """Drive one batch until every record is processed or discarded (or keep_going stops it).

    Sub-batches complete strictly in sequence order, so `done_seq` is a safe checkpoint.
    """
    result = BatchResult()
    # (records, retries used, invocations so far of these records)
    todo: deque[tuple[list[StreamRecord], int, int]] = deque([(records, 0, 0)])

    def discard(batch: list[StreamRecord], condition: str, count: int, last: BatchOutcome | None):
        d = Discard(batch, condition, count, last)
        result.discards.append(d)
        on_discard(d)
        result.done_seq = batch[-1].seq

    while todo:
        if not keep_going():
            result.completed = False
            return result
        batch, retries, count = todo.popleft()
        if policy.max_age_s >= 0:
            t = now()
            expired = [r for r in batch if t - r.arrival > policy.max_age_s]
            if expired:
                discard(expired, AGE_EXCEEDED, count, None)
                batch = [r for r in batch if t - r.arrival <= policy.max_age_s]
                if not batch:
                    continue
        outcome = invoke(batch)
        result.invocations += 1
        count += 1
        if outcome.kind == "ok":
            result.done_seq = batch[-1].seq
            continue
        result.errors += 1
        if outcome.kind == "partial":
            if outcome.failed_from > 0:
                result.done_seq = batch[outcome.failed_from - 1].seq
            rest = batch[outcome.failed_from :]
            if policy.exhausted(retries):
                discard(rest, RETRIES_EXHAUSTED, count, outcome)
            else:
                todo.appendleft((rest, retries + 1, count))
            continue
        if policy.bisect and len(batch) > 1:
            mid = len(batch) // 2
            todo.appendleft((batch[mid:], retries, count))
            todo.appendleft((batch[:mid], retries, count))
        elif policy.exhausted(retries):
            discard(batch, RETRIES_EXHAUSTED, count, outcome)
        else:
            todo.appendleft((batch, retries + 1, count))
    return result


def take_batch(
    available: int, first_arrival: float | None, batch_size: int, window_s: float, now: float
) -> float:
    """Seconds to wait before invoking (0 = invoke now), given what is buffered.

    A batch goes when it is full, or when the oldest buffered record has waited the
    batching window. With nothing buffered, wait the window (the poller also wakes on puts).
    """
    if available <= 0 or first_arrival is None:
        return max(window_s, 0.05)
    if available >= batch_size:
        return 0.0
    return max(0.0, first_arrival + window_s - now)
