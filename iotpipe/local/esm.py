"""Event source mappings that run: one poller thread per (Kinesis mapping, shard).

moto stores mappings but, with one present, tries to run the function in Docker for every
single record. The emulator turns that off (`lambdapatch.no_docker`) and polls instead, like
Lambda: each poller reads its shard straight from moto's store (no HTTP), gathers a batch
by BatchSize and MaximumBatchingWindowInSeconds, runs it through the function's worker
and applies the failure rules of `batching` (partial batch response, bisect, retries,
record age, OnFailure destination). Updates are read before every batch; a disabled
mapping pauses with its checkpoint kept; a deleted one stops.

Checkpoints (`esmcheckpoints`): each (mapping, shard)'s next sequence number, saved after
every batch (in the background, while the next one runs) and at a mapping's creation, so
a restart resumes there: after a clean stop at most the batch in flight per shard runs
again, after a ``kill -9`` also the one before it (Timestream rewrites of identical
records are idempotent, so rows stay exactly once).

Not modelled: ParallelizationFactor > 1 (one batch per shard at a time; order kept),
TumblingWindowInSeconds, FilterCriteria, enhanced fan-out consumers, the 6 MB payload cap.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from iotpipe.local import failures, kinesisevent
from iotpipe.local import motointernals as moto
from iotpipe.local.batching import (
    BatchOutcome,
    Discard,
    RetryPolicy,
    StreamRecord,
    interpret,
    run_batch,
    take_batch,
)
from iotpipe.local.counters import COUNTERS
from iotpipe.local.esmcheckpoints import CHECKPOINTS
from iotpipe.local.functions import FunctionPool
from iotpipe.local.kinesispatch import PUT_SIGNAL, stored_records
from iotpipe.poll import Backoff

FREE_RETRIES = 8  # consecutive failed invokes before retries back off (0.1 s doubling, 2 s max)
RETRY_BACKOFF = Backoff(first=0.1, factor=2.0, cap=2.0)


class ShardPoller(threading.Thread):
    """Feeds one shard of one mapping to its function, batch after batch."""

    def __init__(self, manager: EsmManager, esm: Any, stream: Any, shard: Any, start: int):
        super().__init__(name=f"esm-{esm.uuid[:8]}-{shard.shard_id}", daemon=True)
        self.manager, self.esm, self.stream, self.shard = manager, esm, stream, shard
        self.checkpoint = start
        self.failures = 0  # consecutive failed invocations
        self.stopped = threading.Event()

    def alive_mapping(self) -> bool:
        return (
            not self.stopped.is_set()
            and self.manager.mapping(self.esm.uuid) is self.esm
            and bool(self.esm.enabled)
        )

    def run(self) -> None:
        while not self.stopped.is_set():
            if self.manager.mapping(self.esm.uuid) is not self.esm:
                return
            if not self.esm.enabled:
                self.stopped.wait(0.2)
                continue
            try:
                self._step()
            except Exception as e:  # keep polling; show the problem in status
                self.manager.set_result(self.esm.uuid, f"PROBLEM: {type(e).__name__}: {e}")
                COUNTERS.add("poller_errors")
                self.stopped.wait(0.5)

    def _step(self) -> None:
        esm = self.esm
        size = int(esm.batch_size or 100)
        window = float(esm.max_batch_window or 0)
        head = stored_records(self.shard, self.checkpoint, size)
        first = head[0].arrival if head else None
        wait = take_batch(len(head), first, size, window, time.time())
        if wait > 0:
            with PUT_SIGNAL:
                PUT_SIGNAL.wait(min(wait, 0.5))
            return
        batch = [StreamRecord(r.seq, r.data, r.partition_key, r.arrival) for r in head]
        policy = RetryPolicy(
            max_retries=-1 if esm.max_retry_attempts is None else int(esm.max_retry_attempts),
            max_age_s=-1 if esm.max_record_age is None else int(esm.max_record_age),
            bisect=bool(esm.bisect_on_error),
            report_item_failures="ReportBatchItemFailures" in (esm.function_response_types or []),
        )
        result = run_batch(
            batch,
            lambda b: self._invoke(b, policy),
            policy,
            time.time,
            on_discard=self._discard,
            keep_going=self.alive_mapping,
        )
        if result.done_seq is not None:
            self.checkpoint = result.done_seq
            self.manager.save_checkpoint(esm.uuid, self.shard.shard_id, result.done_seq)
        COUNTERS.add("batches")
        self.manager.set_result(
            esm.uuid, "OK" if not result.errors else "PROBLEM: Function call failed"
        )

    def _invoke(self, batch: list[StreamRecord], policy: RetryPolicy) -> BatchOutcome:
        esm = self.esm
        if self.failures > FREE_RETRIES:  # back off, as Lambda does, once retries pile up
            self.stopped.wait(RETRY_BACKOFF.delay(self.failures - FREE_RETRIES - 1))
        fn = self.manager.function(esm)
        if fn is None:
            outcome = BatchOutcome("error", message=f"function {esm.function_arn} does not exist")
        else:
            records = [(r.partition_key, r.seq, r.data, r.arrival) for r in batch]
            event = kinesisevent.compact(
                records, self.shard.shard_id, fn.role, self.esm.region, self.stream.arn
            )
            res = self.manager.pool.invoke(fn, event)
            message = (res.error or {}).get("errorMessage", "")
            outcome = interpret(res.ok, res.payload, batch, policy.report_item_failures, message)
        self.failures = 0 if outcome.kind == "ok" else self.failures + 1
        return outcome

    def _discard(self, discard: Discard) -> None:
        COUNTERS.add("records_discarded", len(discard.records))
        dest = ((self.esm.destination_config or {}).get("OnFailure") or {}).get("Destination")
        if not dest:
            return
        record = failures.esm_failure_record(
            self.esm.function_arn, self.stream.arn, self.shard.shard_id, discard, time.time()
        )
        try:
            failures.send_to_arn(dest, record)
        except Exception as e:
            self.manager.set_result(self.esm.uuid, f"PROBLEM: OnFailure delivery failed: {e}")
            COUNTERS.add("failure_delivery_errors")


class EsmManager:
    """Keeps one ShardPoller per enabled Kinesis mapping and shard, in step with moto."""

    def __init__(self, pool: FunctionPool) -> None:
        self.pool = pool
        self._pollers: dict[tuple[str, str], ShardPoller] = {}
        self._mappings: dict[str, Any] = {}
        self._starts = CHECKPOINTS.starts  # the same dict: restored at the part's open
        self._results: dict[str, str] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="esm-manager", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            pollers = list(self._pollers.values())
        for p in pollers:
            p.stopped.set()
        with PUT_SIGNAL:
            PUT_SIGNAL.notify_all()

    # -- hooks called from the patched moto methods ---------------------------------
    def on_created(self, esm: Any) -> None:
        """Fix a LATEST/AT_TIMESTAMP start at creation time, then poll right away."""
        stream = self._stream(esm)
        if stream is not None:
            with self._lock:  # not between a sync's listing of mappings and its pruning
                for shard in moto.shards(stream):
                    self._starts[(esm.uuid, shard.shard_id)] = self._start_position(esm, shard)
            CHECKPOINTS.save()
        self.sync()

    def on_changed(self) -> None:
        self.sync()

    # -- bookkeeping ----------------------------------------------------------------
    def mapping(self, uuid: str) -> Any:
        return self._mappings.get(uuid)

    def save_checkpoint(self, uuid: str, shard_id: str, seq: int) -> None:
        CHECKPOINTS.advance(uuid, shard_id, seq)

    def set_result(self, uuid: str, text: str) -> None:
        self._results[uuid] = text

    def result(self, uuid: str) -> str | None:
        return self._results.get(uuid)

    def function(self, esm: Any) -> Any:
        return moto.function(esm.account_id, esm.region, esm.function_arn)

    @staticmethod
    def _stream(esm: Any) -> Any:
        return moto.stream_by_arn(esm.event_source_arn)

    @staticmethod
    def _start_position(esm: Any, shard: Any) -> int:
        if esm.starting_position == "LATEST":
            return shard.get_max_sequence_number()
        if esm.starting_position == "AT_TIMESTAMP" and esm.starting_position_timestamp:
            return shard.get_sequence_number_at(float(esm.starting_position_timestamp))
        return 0

    def sync(self) -> None:
        """Start pollers for new mappings/shards, stop those of deleted mappings."""
        with self._lock:
            current: dict[str, Any] = {
                esm.uuid: esm
                for _, _, esm in moto.all_event_source_mappings()
                if ":kinesis:" in esm.event_source_arn
            }
            self._mappings = current
            for key, poller in list(self._pollers.items()):
                if current.get(key[0]) is not poller.esm or not poller.is_alive():
                    poller.stopped.set()
                    del self._pollers[key]
            if gone := [k for k in self._starts if k[0] not in current]:
                for key in gone:  # a deleted mapping's checkpoints: nothing resumes there
                    self._starts.pop(key, None)
                CHECKPOINTS.save()
            for esm in current.values():
                stream = self._stream(esm)
                if stream is None:
                    continue
                # A mapping seen for the first time starts at its StartingPosition; a shard
                # that appears later (resharding) is read from its beginning.
                known = any(k[0] == esm.uuid for k in self._starts)
                for shard in moto.shards(stream):
                    key = (esm.uuid, shard.shard_id)
                    if key in self._pollers:
                        continue
                    start = self._starts.get(key)
                    if start is None:
                        start = 0 if known else self._start_position(esm, shard)
                        self._starts[key] = start
                    poller = ShardPoller(self, esm, stream, shard, start)
                    self._pollers[key] = poller
                    poller.start()
            self.pool.prune(self._live_functions())

    @staticmethod
    def _live_functions() -> set[tuple[str, str, str]]:
        return {(a, r, fn.function_name) for a, r, fn in moto.all_latest_functions()}

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self.sync()
            except Exception:
                COUNTERS.add("poller_errors")

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            pollers = list(self._pollers.values())
            mappings = dict(self._mappings)
        out = []
        for uuid, esm in mappings.items():
            mine = [p for p in pollers if p.esm is esm]
            out.append(
                {
                    "uuid": uuid,
                    "function": esm.function_arn.split(":")[-1],
                    "state": "Enabled" if esm.enabled else "Disabled",
                    "shards": len(mine),
                    "last_result": self._results.get(uuid, "No records processed"),
                }
            )
        return out
