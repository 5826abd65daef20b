"""Firehose delivery streams that read a Kinesis stream: one delivery thread per stream.

moto stores a KinesisStreamAsSource delivery stream and never reads its source. Here a
thread per stream reads every shard straight from moto's store (like `esm.ShardPoller`)
from the shard's end when the delivery stream was created (Firehose starts at LATEST; a
later shard from its start), buffers by BufferingHints (`firehosebuffer`), and on each
flush runs the Lambda processor and writes one Parquet object per partition (`parquet`,
schema from Glue) plus JSON-lines error objects. Nothing is lost or half-written: a
flush's objects (keys included) are computed once and kept until all are in S3, a failed
write is retried with backoff, and the shards' checkpoints advance only after the last
(saved by `firehosestate`, so a restart resumes there).
Not modelled: per-partition buffers (one per stream, split at flush), the processor's
BufferIntervalInSeconds, S3 backup, CloudWatch error logging, partitionKeyFromQuery.
"""

from __future__ import annotations

import gzip
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from iotpipe.local import firehosebuffer as fb
from iotpipe.local import firehosestate as fs
from iotpipe.local import motointernals as moto
from iotpipe.local import motointernals_lake as lake
from iotpipe.local import parquet
from iotpipe.local.counters import COUNTERS
from iotpipe.local.firehosestate import CHECKPOINTS
from iotpipe.local.functions import FunctionPool
from iotpipe.local.kinesispatch import PUT_SIGNAL, stored_records
from iotpipe.poll import Backoff

READ_LIMIT = 10_000  # records per shard per read
RETRY_BACKOFF = Backoff(first=0.2, factor=2.0, cap=5.0)  # failed S3 writes, missing tables
INVOKE_BACKOFF = Backoff(first=0.1, factor=2.0, cap=1.0)  # between processor retries
IDLE_S = 0.25


class Delivery(threading.Thread):
    """Reads one delivery stream's source, buffers, and delivers to S3, flush by flush."""

    def __init__(
        self,
        manager: FirehoseManager,
        account: str,
        region: str,
        ds: Any,
        starts: dict[str, int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name=f"firehose-{ds.delivery_stream_name}", daemon=True)
        self.manager, self.account, self.region, self.ds = manager, account, region, ds
        self.clock = clock
        self.read_pos = dict(starts)  # shard id -> last sequence number buffered
        self.checkpoint = dict(starts)  # shard id -> last sequence number delivered
        self.buffer = fb.Buffer()
        self.outbox: fb.Outbox | None = None
        self.stats: Counter[str] = Counter()
        self.retries = 0  # consecutive failed rounds
        self.last_error = ""
        self.last_flush_at: float | None = None
        self.stopped = threading.Event()

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> None:
        while not self.stopped.is_set() and self.manager.current(self.ds):
            try:
                wait = self.step()
                self.retries = 0
            except Exception as e:  # keep the records; retry; show why in status
                self.last_error = f"{type(e).__name__}: {e}"
                self.stats["delivery_retries"] += 1
                COUNTERS.add("firehose_retries")
                self.stopped.wait(RETRY_BACKOFF.delay(self.retries))
                self.retries += 1
                continue
            if wait > 0:
                with PUT_SIGNAL:
                    PUT_SIGNAL.wait(min(wait, IDLE_S))

    def step(self) -> float:
        """One round: finish a pending flush, else read, else flush when due; returns the wait."""
        if self.outbox is not None:
            self._write(self.outbox)
            return 0.0
        dest = lake.extended_s3(self.ds) or {}
        hints = fb.Hints.from_config(dest)
        got = self._read(hints)
        now = self.clock()
        if self.buffer.due(hints, now):
            self.outbox = self._prepare(dest, self.buffer.items)
            self.buffer.take()
            self._write(self.outbox)
            return 0.0
        wait = self.buffer.wait(hints, now)
        return 0.0 if got else (IDLE_S if wait is None else wait)

    # -- reading ----------------------------------------------------------------------
    def _read(self, hints: fb.Hints) -> int:
        stream = moto.stream_by_arn(lake.source_stream_arn(self.ds))
        if stream is None:
            self.last_error = f"source stream {lake.source_stream_arn(self.ds)} not found"
            return 0
        got = 0
        now = self.clock()
        for shard in moto.shards(stream):
            if self.buffer.full(hints):
                break
            sid = shard.shard_id
            for rec in stored_records(shard, self.read_pos.get(sid, 0), READ_LIMIT):
                item = fb.Item(sid, rec.seq, rec.data, rec.partition_key, rec.arrival)
                self.buffer.add(item, fb.b64_size(rec.data), now)
                self.read_pos[sid] = rec.seq
                got += 1
                if self.buffer.full(hints):
                    break
        self.stats["received"] += got
        COUNTERS.add("firehose_records_in", got)
        return got

    # -- a flush ----------------------------------------------------------------------
    def _prepare(self, dest: dict[str, Any], items: list[fb.Item]) -> fb.Outbox:
        """Transform and convert; every object's key and bytes, nothing written yet."""
        proc = fb.Processor.from_config(dest)
        box = fb.Outbox([], dict(self.read_pos), len(items))
        errors: dict[str, list[tuple[fb.Item, str]]] = {}
        ok: list[tuple[fb.Item, bytes, dict[str, str]]]
        if proc is None:
            ok = [(it, it.raw(), {}) for it in items]
        else:
            ok = self._transform(proc, items, errors, box.stats)
        dynamic = bool((dest.get("DynamicPartitioningConfiguration") or {}).get("Enabled"))
        prefix = fb.data_prefix(str(dest.get("Prefix") or ""), dynamic)
        for keys, group in fb.partitions(ok).items():
            oldest = min(it.arrival for it, _ in group)
            try:
                where = fb.evaluate(prefix, oldest, dict(keys))
            except fb.PrefixError as e:
                now_ms = int(self.clock() * 1000)
                errors.setdefault(fb.PARTITIONING_FAILED, []).extend(
                    (it, fb.partitioning_failed(data, it.arrival_ms, str(e), now_ms))
                    for it, data in group
                )
                box.stats["partitioning_failed"] += len(group)
                continue
            box.outputs.extend(self._data_objects(dest, where, oldest, group, errors))
        self._error_objects(dest, errors, box)
        return box

    def _transform(
        self,
        proc: fb.Processor,
        items: list[fb.Item],
        errors: dict[str, list[tuple[fb.Item, str]]],
        stats: Counter[str],
    ) -> list[tuple[fb.Item, bytes, dict[str, str]]]:
        ok: list[tuple[fb.Item, bytes, dict[str, str]]] = []
        for part in fb.chunks([len(it.data) for it in items], proc.chunk_bytes):
            chunk = [items[i] for i in part]
            results, code, message, attempts = self._invoke(proc, chunk)
            now_ms = int(self.clock() * 1000)
            for it in chunk:
                res = results.get(it.record_id) if results is not None else None
                if res is not None and res.result == "Ok":
                    ok.append((it, res.data, res.keys))
                elif res is not None and res.result == "Dropped":
                    stats["dropped"] += 1
                else:
                    if res is not None:
                        code, message = "Lambda.ProcessingFailedStatus", fb.FAILED_STATUS_MESSAGE
                    line = fb.processing_failed(
                        it.data, it.arrival_ms, attempts, code, message, proc.arn, now_ms
                    )
                    errors.setdefault(fb.PROCESSING_FAILED, []).append((it, line))
                    stats["processing_failed"] += 1
        return ok

    def _invoke(
        self, proc: fb.Processor, chunk: list[fb.Item]
    ) -> tuple[dict[str, fb.Transformed] | None, str, str, int]:
        """The processor's results for a chunk, after up to NumberOfRetries retries."""
        event = fb.transform_event(
            chunk, self.ds.delivery_stream_arn, self.region, lake.source_stream_arn(self.ds)
        )
        ids = [it.record_id for it in chunk]
        code, message = "Lambda.FunctionError", ""
        fn_account, fn_region = fb.arn_account_region(proc.arn, self.account, self.region)
        for attempt in range(proc.retries + 1):
            if attempt:
                self.stopped.wait(INVOKE_BACKOFF.delay(attempt - 1))
            fn = moto.function(fn_account, fn_region, proc.arn)
            if fn is None:
                code, message = "Lambda.FunctionNotFound", f"function {proc.arn} does not exist"
                continue
            self.stats["invocations"] += 1
            res = self.manager.pool.invoke(fn, event)
            if not res.ok:
                self.stats["invocation_failures"] += 1
                message = str((res.error or {}).get("errorMessage") or res.kind)
                code = "Lambda.FunctionError"
                continue
            try:
                return fb.parse_response(res.payload, ids), "", "", attempt + 1
            except fb.ResponseError as e:
                self.stats["invocation_failures"] += 1
                code, message = e.code, str(e)
        return None, code, message, proc.retries + 1

    def _data_objects(
        self,
        dest: dict[str, Any],
        where: str,
        oldest: float,
        group: list[tuple[fb.Item, bytes]],
        errors: dict[str, list[tuple[fb.Item, str]]],
    ) -> list[fb.Output]:
        name = self._object_name(oldest)
        conversion = dest.get("DataFormatConversionConfiguration") or {}
        if not conversion.get("Enabled", bool(conversion)):
            body = b"".join(data for _, data in group)
            if str(dest.get("CompressionFormat") or "").upper() == "GZIP":
                body, name = gzip.compress(body), name + ".gz"
            stats = Counter(delivered_records=len(group), bytes=len(body), objects=1)
            return [fb.Output(where + name, body, stats)]
        schema = conversion.get("SchemaConfiguration") or {}
        table = parquet.catalog_table(schema, self.account, self.region)
        columns = lake.glue_columns(table["catalogId"], table["region"], *parquet.db_table(schema))
        converted = parquet.convert([data for _, data in group], columns)
        now_ms = int(self.clock() * 1000)
        for index, message in converted.failures:
            it, data = group[index]
            line = parquet.conversion_failed(
                data, it.arrival_ms, message, str(it.seq), table, now_ms
            )
            errors.setdefault(fb.FORMAT_CONVERSION_FAILED, []).append((it, line))
        failed = Counter(conversion_failed=len(converted.failures))
        if converted.data is None:
            return [fb.Output("", b"", failed, written=True)] if converted.failures else []
        stats = failed + Counter(
            delivered_records=len(group) - len(converted.failures),
            delivered_rows=converted.rows,
            bytes=len(converted.data),
            objects=1,
        )
        return [fb.Output(where + name + ".parquet", converted.data, stats)]

    def _error_objects(
        self, dest: dict[str, Any], errors: dict[str, list[tuple[fb.Item, str]]], box: fb.Outbox
    ) -> None:
        for kind, lines in errors.items():
            oldest = min(it.arrival for it, _ in lines)
            try:
                where = fb.evaluate(
                    dest.get("ErrorOutputPrefix") or fb.DEFAULT_ERROR_PREFIX, oldest, None, kind
                )
            except fb.PrefixError:
                where = fb.evaluate(fb.DEFAULT_ERROR_PREFIX, oldest, None, kind)
            body = ("\n".join(line for _, line in lines) + "\n").encode()
            stats = Counter(error_objects=1, bytes=len(body))
            box.outputs.append(fb.Output(where + self._object_name(oldest), body, stats))

    def _object_name(self, oldest: float) -> str:
        stream, version = self.ds.delivery_stream_name, lake.version(self.ds)
        return fb.object_name(stream, version, oldest, str(uuid.uuid4()))

    def _write(self, box: fb.Outbox) -> None:
        """Every object not yet written (a retry skips those that are); then checkpoint."""
        bucket = fb.bucket_name((lake.extended_s3(self.ds) or {}).get("BucketARN", ""))
        for out in box.outputs:
            if out.written:
                continue
            if self.stopped.is_set():
                return
            lake.put_object(self.account, self.region, bucket, out.key, out.body)
            out.written = True
        for out in box.outputs:
            self.stats.update(out.stats)
        self.stats.update(box.stats)
        self.stats["flushes"] += 1
        COUNTERS.add("firehose_objects", sum(o.stats["objects"] for o in box.outputs))
        self.checkpoint = dict(box.covers)
        CHECKPOINTS.put(self.ds, self.checkpoint)  # durable: a restart resumes here
        self.outbox = None
        self.last_error = ""
        self.last_flush_at = self.clock()

    def status(self) -> dict[str, Any]:
        dest = lake.extended_s3(self.ds) or {}
        return {
            "name": self.ds.delivery_stream_name,
            "arn": self.ds.delivery_stream_arn,
            "source": lake.source_stream_arn(self.ds),
            "bucket": fb.bucket_name(dest.get("BucketARN", "")),
            "version": lake.version(self.ds),
            "buffered": len(self.buffer.items) + (self.outbox.records if self.outbox else 0),
            "buffered_bytes": self.buffer.size,
            "checkpoints": {k: str(v) for k, v in sorted(self.checkpoint.items())},
            **{k: self.stats.get(k, 0) for k in fb.STAT_NAMES},
            "last_flush_at": self.last_flush_at,
            "last_error": self.last_error,
        }


class FirehoseManager:
    """Keeps one Delivery per KinesisStreamAsSource delivery stream, in step with moto."""

    def __init__(self, pool: FunctionPool) -> None:
        self.pool = pool
        self._deliveries: dict[str, Delivery] = {}
        self._current: dict[str, Any] = {}
        self._starts: dict[int, dict[str, int]] = {}  # id(DeliveryStream) -> LATEST at creation
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="firehose-manager", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            deliveries = list(self._deliveries.values())
        for d in deliveries:
            d.stopped.set()
        with PUT_SIGNAL:
            PUT_SIGNAL.notify_all()
        deadline = time.monotonic() + 3.0  # a delivery mid-invoke ends at its next check
        for d in deliveries:
            d.join(timeout=max(0.0, deadline - time.monotonic()))

    # -- hooks called from the patched moto methods ---------------------------------
    def on_created(self, arn: str) -> None:
        """Fix the LATEST start of every shard now, then deliver right away."""
        with self._lock:
            for _, _, ds in lake.all_delivery_streams():
                if ds.delivery_stream_arn == arn and lake.is_kinesis_source(ds):
                    self._starts[id(ds)] = self._latest(ds)
        self.sync()

    def on_changed(self) -> None:
        self.sync()

    def current(self, ds: Any) -> bool:
        return self._current.get(ds.delivery_stream_arn) is ds and not self._stop.is_set()

    @staticmethod
    def _latest(ds: Any) -> dict[str, int]:
        stream = moto.stream_by_arn(lake.source_stream_arn(ds))
        if stream is None:
            return {}
        return {s.shard_id: s.get_max_sequence_number() for s in moto.shards(stream)}

    def sync(self) -> None:
        """Start deliveries for new streams, stop those of deleted (or replaced) ones."""
        with self._lock:
            found = {
                ds.delivery_stream_arn: (a, r, ds)
                for a, r, ds in lake.all_delivery_streams()
                if lake.is_kinesis_source(ds)
            }
            self._current = {arn: ds for arn, (_, _, ds) in found.items()}
            for arn, d in list(self._deliveries.items()):
                if self._current.get(arn) is d.ds and d.is_alive():
                    continue
                d.stopped.set()
                del self._deliveries[arn]
                if self._current.get(arn) is d.ds:  # its thread ended: resume where it was
                    self._starts[id(d.ds)] = dict(d.checkpoint)
                else:
                    self._starts.pop(id(d.ds), None)
            if self._stop.is_set():
                return
            for arn, (account, region, ds) in found.items():
                if arn in self._deliveries:
                    continue
                starts = self._starts.get(id(ds)) or CHECKPOINTS.get(ds) or self._latest(ds)
                self._starts[id(ds)] = starts
                CHECKPOINTS.put(ds, starts, {fs.key(d) for _, _, d in found.values()})
                delivery = Delivery(self, account, region, ds, starts)
                self._deliveries[arn] = delivery
                delivery.start()

    def _loop(self) -> None:
        while not self._stop.wait(IDLE_S):
            try:
                self.sync()
            except Exception:
                COUNTERS.add("firehose_errors")

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            deliveries = list(self._deliveries.values())
        return [d.status() for d in deliveries]
