"""Sending messages into the pipeline: Kinesis PutRecords or IoT Core publish.

Kinesis takes at most 500 records and 5 MiB a PutRecords call, and a call can succeed while
some of its entries fail (``FailedRecordCount`` > 0, the failed entries carry ``ErrorCode``
at their request positions). So: batch by count *and* bytes, keep a few calls in flight
(bounded, so a long run holds a few batches in memory, not the whole fleet), and resend only
the failed entries, with exponential backoff and full jitter so throttled senders spread out
instead of retrying in lockstep. Pacing, the retry clock and the jitter RNG are injected:
tests never really wait.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore.exceptions import ClientError

from iotpipe import gcpolicy
from iotpipe.aws import Gateway, error_code
from iotpipe.fleet import Message
from iotpipe.poll import Backoff, Clock, retrying

MAX_RECORDS = 500
MAX_REQUEST_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
# A paced batch waits at most this long for company before it is sent.
LINGER_S = 0.2
# Whole-call errors worth another try; anything else (no stream, no permission) stops the run.
RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ThrottlingException",
        "KMSThrottlingException",
        "LimitExceededException",
    }
)


@dataclass(frozen=True)
class Resend:
    """How a sink retries what was throttled: ``attempts`` calls at most, pausing by
    ``backoff`` (full jitter by default: many senders compete for one shard's throughput, and
    spreading them out is the point) on ``clock``."""

    attempts: int = 8
    backoff: Backoff = field(default_factory=lambda: Backoff(first=0.1, jitter="full"))
    clock: Clock = field(default_factory=Clock)


class _StillFailing(Exception):
    """Some entries of a PutRecords are still refused (``args``: their codes)."""


def _retryable(exc: Exception) -> bool:
    return error_code(exc) in RETRYABLE


@dataclass
class BatchCounts:
    """What one batch came to: every message is either sent or failed, exactly once."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def count(self, code: str | None) -> None:
        """One message: sent (no error code) or failed with ``code``."""
        if code is None:
            self.sent += 1
        else:
            self.failed += 1
            self.errors[code] += 1


class Sink(Protocol):
    max_records: int
    max_bytes: int

    def send(self, batch: list[Message]) -> BatchCounts: ...


def entry_size(message: Message) -> int:
    """Bytes Kinesis counts against its limits: data plus partition key."""
    return len(message.data) + len(message.partition_key.encode())


class KinesisSink:
    """PutRecords to one stream; resends only the entries that failed."""

    max_records = MAX_RECORDS
    max_bytes = MAX_REQUEST_BYTES

    def __init__(self, client: Any, stream: str, resend: Resend | None = None) -> None:
        self.client = client
        self.stream = stream
        self.resend = resend or Resend()

    def send(self, batch: list[Message]) -> BatchCounts:
        out = BatchCounts()
        pending = []
        for m in batch:
            if entry_size(m) > MAX_RECORD_BYTES:
                out.failed += 1
                out.errors["RecordTooLarge"] += 1
            else:
                pending.append(m)

        def put_pending() -> None:
            nonlocal pending
            codes = self._put(pending)
            out.sent += codes.count(None)
            pending = [m for m, c in zip(pending, codes, strict=True) if c is not None]
            if pending:
                raise _StillFailing(*(c for c in codes if c is not None))

        def count_retry(exc: Exception, pause: float) -> None:
            out.retried += len(pending)

        if pending:
            try:
                retrying(
                    put_pending,
                    retry_if=lambda exc: isinstance(exc, _StillFailing),
                    attempts=self.resend.attempts,
                    backoff=self.resend.backoff,
                    clock=self.resend.clock,
                    on_retry=count_retry,
                )
            except _StillFailing as exc:
                out.failed += len(pending)
                out.errors.update(exc.args)
        return out

    def _put(self, batch: list[Message]) -> list[str | None]:
        """Error code per entry (None = stored); a retryable whole-call error fails all."""
        records = [{"Data": m.data, "PartitionKey": m.partition_key} for m in batch]
        try:
            resp = self.client.put_records(StreamName=self.stream, Records=records)
        except ClientError as exc:
            if error_code(exc) not in RETRYABLE:
                raise
            return [error_code(exc)] * len(batch)
        return [r.get("ErrorCode") for r in resp["Records"]]


class IotSink:
    """IoT Core publish, one message per call, to the device's topic (the rule's filter)."""

    max_records = 1
    max_bytes = 128 * 1024  # the MQTT message limit of AWS IoT Core

    def __init__(self, client: Any, topic_filter: str, resend: Resend | None = None) -> None:
        self.client = client
        self.topic_filter = topic_filter
        self.resend = resend or Resend()

    def send(self, batch: list[Message]) -> BatchCounts:
        out = BatchCounts()

        def count_retry(exc: Exception, pause: float) -> None:
            out.retried += 1

        for m in batch:
            too_large = len(m.data) > self.max_bytes
            out.count("PayloadTooLarge" if too_large else self._publish(m, count_retry))
        return out

    def _publish(
        self, message: Message, on_retry: Callable[[Exception, float], None]
    ) -> str | None:
        """None once published; the code of a throttling that outlasted every attempt."""
        try:
            retrying(
                lambda: self.client.publish(
                    topic=topic_for(self.topic_filter, message.device_id),
                    qos=1,
                    payload=message.data,
                ),
                retry_if=_retryable,
                attempts=self.resend.attempts,
                backoff=self.resend.backoff,
                clock=self.resend.clock,
                on_retry=on_retry,
            )
        except ClientError as exc:
            if not _retryable(exc):
                raise
            return error_code(exc)
        return None


def topic_for(topic_filter: str, device_id: str) -> str:
    """``iot/sensors/+/data`` -> ``iot/sensors/<device>/data`` (``#`` too)."""
    return "/".join(device_id if s in ("+", "#") else s for s in topic_filter.split("/"))


def iot_data_client(gateway: Gateway) -> Any:
    """The IoT data-plane client: same endpoint on the embedded AWS or a moto server; on AWS
    the account's own ``iot:Data-ATS`` endpoint, which the SDK does not resolve by itself."""
    if gateway.local or gateway.endpoint_url:
        return gateway.client("iot-data")
    address = gateway.client("iot").describe_endpoint(endpointType="iot:Data-ATS")
    return gateway.client("iot-data", endpoint_url=f"https://{address['endpointAddress']}")


def batches(
    messages: Iterable[Message], max_records: int, max_bytes: int
) -> Iterator[list[Message]]:
    """Consecutive batches within both limits; order is kept."""
    batch: list[Message] = []
    size = 0
    for m in messages:
        n = entry_size(m)
        if batch and (len(batch) >= max_records or size + n > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(m)
        size += n
    if batch:
        yield batch


@dataclass(frozen=True)
class Pacer:
    """Lets message k go at ``start + k / rate``; no rate means as fast as possible."""

    rate: float | None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def pace(self, messages: Iterable[Message]) -> Iterator[Message]:
        if not self.rate:
            yield from messages
            return
        start = self.clock()
        for k, m in enumerate(messages):
            delay = start + k / self.rate - self.clock()
            if delay > 0:
                self.sleep(delay)
            yield m


@dataclass
class SendSummary:
    """Totals of a run; ``invalid`` counts the messages that were broken on purpose.

    ``sent`` counts what the service acknowledged, ``failed`` what it refused (or what was
    too large to send); ``submitted`` what went into a call, so a run that stops half-way
    knows how many it cannot vouch for either way (:attr:`unconfirmed`).
    """

    sent: int = 0
    failed: int = 0
    submitted: int = 0
    retried: int = 0
    invalid: int = 0
    messages: int = 0
    batches: int = 0
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    @property
    def unconfirmed(self) -> int:
        """Submitted but neither acknowledged nor refused: in flight when the run stopped."""
        return max(0, self.submitted - self.sent - self.failed)

    def add(self, outcome: BatchCounts) -> None:
        self.sent += outcome.sent
        self.failed += outcome.failed
        self.retried += outcome.retried
        self.errors.update(outcome.errors)
        self.batches += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "sent": self.sent,
            "invalid_injected": self.invalid,
            "retried": self.retried,
            "failed": self.failed,
            "errors": dict(self.errors),
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "rate_per_s": round(self.rate, 1),
        }


# Old names, until mqttsend, cli/render and cli/progress (not this change's) import the new.


@gcpolicy.bulk()
def deliver(
    messages: Iterable[Message],
    sink: Sink,
    *,
    rate: float | None = None,
    workers: int = 4,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    on_batch: Callable[[BatchCounts], None] | None = None,
    summary: SendSummary | None = None,
) -> SendSummary:
    """Send everything through ``sink`` with at most ``workers`` calls in flight.

    Paced runs send smaller batches (about ``LINGER_S`` worth of messages) so a slow rate
    does not hold messages back until a 500-record batch fills. ``on_batch`` is called from
    worker threads (a rich progress bar is thread-safe). Pass ``summary`` to keep the counts
    of a run that stops with an exception (Ctrl-C, the endpoint gone): batches not yet
    started are cancelled and uncounted, batches in flight finish and are counted.
    """
    summary = summary if summary is not None else SendSummary()
    clock = clock or time.monotonic  # looked up now, so a test can replace time's
    sleep = sleep or time.sleep
    lock = threading.Lock()
    max_records = sink.max_records
    if rate:
        max_records = max(1, min(max_records, int(min(rate, 1e6) * LINGER_S)))

    def counted(stream: Iterable[Message]) -> Iterator[Message]:
        for m in stream:
            summary.messages += 1
            summary.invalid += m.invalid is not None
            yield m

    def finish(future: Future[BatchCounts]) -> None:
        """Runs in the worker thread as the batch completes, so progress is live; errors
        are left for the main thread to raise (a callback's exception would be lost)."""
        if future.cancelled() or future.exception() is not None:
            return
        outcome = future.result()
        with lock:
            summary.add(outcome)
        if on_batch:
            on_batch(outcome)

    started = clock()
    paced = Pacer(rate, clock, sleep).pace(counted(messages))
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="send") as pool:
            _pump(pool, batches(paced, max_records, sink.max_bytes), sink, workers, finish, summary)
        # Leaving the pool joined its threads, so every callback has run.
    finally:
        summary.seconds = clock() - started
    return summary


def _pump(
    pool: ThreadPoolExecutor,
    stream: Iterable[list[Message]],
    sink: Sink,
    workers: int,
    finish: Callable[[Future[BatchCounts]], None],
    summary: SendSummary,
) -> None:
    """Submit batches, at most ``workers`` in flight; on any exception cancel the batches
    that have not started (they were never sent, so they leave ``submitted``) and re-raise."""
    inflight: dict[Future[BatchCounts], int] = {}
    try:
        for batch in stream:
            if len(inflight) >= workers:
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for f in done:
                    del inflight[f]
                    f.result()  # raises what the batch raised
            summary.submitted += len(batch)
            future = pool.submit(sink.send, batch)
            future.add_done_callback(finish)
            inflight[future] = len(batch)
        for f in inflight:
            f.result()
    except BaseException:
        for f, size in inflight.items():
            if f.cancel():
                summary.submitted -= size
        raise
