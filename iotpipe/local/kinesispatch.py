"""Replacements for moto's Kinesis, declared against the classes they change.

moto recomputes the last sequence number by listing every key of a shard on each put
(O(n): puts slow down as the stream grows), is not thread-safe on put, scans a shard from
its start on GetRecords, serializes PutRecords responses with a slow generic serializer,
and invokes the mapped function once per record (see `lambdapatch.no_docker`). Sequence numbers here are 56 digits like AWS's, so string order is numeric
order, and a shard's numbers are consecutive, which makes reads O(batch).

moto's shard iterators are MIME base64 with a newline in them, so the recipe's
``get-records --shard-iterator $SHARD_ITERATOR`` (unquoted) breaks in a shell; here they
are unpadded base64url (``[A-Za-z0-9_-]``), and GetRecords still reads moto's form. A
record over 1 MiB (data + partition key) is refused as Kinesis refuses it; moto only
checked that in PutRecords.

A shard's records are not moto's dict but a `kinesisstore` store (segment files on disk,
or in memory ``--ephemeral``); PutRecord(s) answer only once their records are durable.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from typing import Any

from iotpipe.local import kinesisstore
from iotpipe.local import motointernals as moto
from iotpipe.local import motointernals_hot as hot
from iotpipe.local.counters import COUNTERS
from iotpipe.local.patching import service
from iotpipe.local.segments import Stored

KINESIS = service("kinesis")

SEQ_BASE = 49 * 10**54  # 56 digits, like real Kinesis sequence numbers
SEQ_SHARD_SPAN = 10**40
_PUT_LOCK = threading.Lock()

# Notified on every put, so idle pollers (`esm`) wake at once.
PUT_SIGNAL = threading.Condition()


def notify_put() -> None:
    with PUT_SIGNAL:
        PUT_SIGNAL.notify_all()


def edge_key(records: dict[int, Any], last: bool = False) -> int | None:
    """First (or last) key of a dict another thread may be inserting into, None if empty."""
    while True:
        try:
            return next(reversed(records)) if last else next(iter(records))
        except StopIteration:
            return None
        except RuntimeError:  # changed size between iter() and next(): look again
            continue


def shard_records(shard: Any, after: int, limit: int) -> list[Any]:
    """Up to `limit` records after sequence number `after`, O(limit).

    Relies on the patched put: a shard's sequence numbers are consecutive integers.
    """
    records = moto.shard_records(shard)
    if isinstance(records, kinesisstore.MemoryRecords | kinesisstore.DiskRecords):
        return records.read_after(after, limit)
    first = edge_key(records)  # a shard moto made and nothing was put into yet
    return [] if first is None else kinesisstore.MemoryRecords(records).read_after(after, limit)


def stored_records(shard: Any, after: int, limit: int) -> list[Stored]:
    """What `shard_records` gives, as plain tuples: the pollers (mappings, Firehose) read
    every record once, and a moto ``Record`` per record cost them a datetime each."""
    records = moto.shard_records(shard)
    if isinstance(records, kinesisstore.DiskRecords):
        return records.log.read_after(after, limit)
    return [
        Stored(r.sequence_number, r.created_at, r.partition_key, r.explicit_hash_key, r.data)
        for r in shard_records(shard, after, limit)
    ]


def store_of(stream: Any, shard: Any) -> Any:
    """The shard's record store (`kinesisstore`), put in place of moto's dict on first use."""
    records = moto.shard_records(shard)
    if not isinstance(records, kinesisstore.MemoryRecords | kinesisstore.DiskRecords):
        records = kinesisstore.records_for(moto.shard_key(stream, shard))
        if isinstance(records, kinesisstore.MemoryRecords):
            records.update(moto.shard_records(shard))
        moto.set_shard_records(shard, records)
    records.retention_s = float(stream.retention_period_hours) * 3600
    return records


kinesisstore.MAKE[:] = [lambda s: moto.record_from(*s)]


def attach_restored() -> None:
    """Every restored shard reads its files, also one never written to before the last
    snapshot (its pickle holds moto's empty dict): the pollers read shards directly."""
    for stream in moto.all_streams():
        for shard in moto.shards(stream):
            store_of(stream, shard)


kinesisstore.ON_OPEN[:] = [attach_restored]


@KINESIS.patch(moto.Shard, "get_max_sequence_number")
def max_seq(self: Any) -> int:
    return edge_key(moto.shard_records(self), last=True) or 0


@KINESIS.patch(moto.Shard, "get_min_sequence_number")
def min_seq(self: Any) -> int:
    return edge_key(moto.shard_records(self)) or 0


@KINESIS.patch(moto.Shard, "get_sequence_number_at")
def seq_at(self: Any, at_timestamp: float) -> int:
    """The last sequence number before ``at_timestamp`` (0: none), by bisection: O(log n)."""
    store = moto.shard_records(self)
    first, last = edge_key(store), edge_key(store, last=True)
    if first is None or last is None or at_timestamp <= store[first].created_at:
        return 0
    lo, hi = first, last + 1  # find the first record at or after the timestamp
    while lo < hi:
        mid = (lo + hi) // 2
        rec = store.get(mid)
        if rec is not None and rec.created_at < at_timestamp:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


@KINESIS.patch(moto.Shard, "get_records")
def get_records(self: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
    last = int(last_sequence_id)
    records = shard_records(self, last, int(limit or 10000))
    if records:
        last = records[-1].sequence_number
        store = moto.shard_records(self)
        newest_key = edge_key(store, last=True)
        newest = records[-1] if newest_key is None else store[newest_key]
        behind = int((newest.created_at - records[-1].created_at) * 1000)
    else:
        behind = 0
    return records, last, behind


MAX_RECORD_BYTES = 1024 * 1024  # data blob (before base64) + partition key


def blob_size(data: str) -> int:
    """Bytes of a base64 text once decoded, without decoding it when it is well-formed."""
    n = len(data)
    if n % 4:
        return len(base64.b64decode(data))
    return n // 4 * 3 - (data[-2:] == "==") - (data[-1:] == "=")


def check_record_size(partition_key: str, data: str) -> None:
    """Kinesis' ValidationException for a record over 1 MiB (data + partition key)."""
    size = blob_size(data or "") + len((partition_key or "").encode())
    if size > MAX_RECORD_BYTES:
        raise moto.JsonRESTError(
            "ValidationException",
            "1 validation error detected: Value at 'data' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_RECORD_BYTES} (data plus "
            f"partition key: {size} bytes)",
        )


def encode_iterator(stream_name: str, shard_id: str, last: int | str) -> str:
    """A shard iterator with no character a shell splits or expands."""
    raw = f"{stream_name}:{shard_id}:{last}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_iterator(iterator: str) -> tuple[str, str, str]:
    """(stream name, shard id, last sequence number) from ours or moto's own form."""
    text = "".join(str(iterator or "").split()).replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    parts = raw.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise moto.InvalidArgumentError("Invalid ShardIterator.")
    return parts[0], parts[1], parts[2]


@KINESIS.patch(moto.KinesisBackend, "get_shard_iterator", pass_original=True)
def get_shard_iterator(
    original: Callable[..., str],
    self: Any,
    stream_arn: str | None,
    stream_name: str | None,
    shard_id: str,
    shard_iterator_type: str,
    starting_sequence_number: int,
    at_timestamp: Any,
) -> str:
    """moto's position (and validation), in the shell-safe form; names the stream always."""
    moto_form = original(
        self,
        stream_arn,
        stream_name,
        shard_id,
        shard_iterator_type,
        starting_sequence_number,
        at_timestamp,
    )
    stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
    _, shard, last = moto.decompose_shard_iterator(moto_form)
    return encode_iterator(stream.stream_name, shard, last)


@KINESIS.patch(moto.KinesisBackend, "get_records")
def backend_get_records(
    self: Any, stream_arn: str | None, shard_iterator: str, limit: int | None
) -> tuple[str, list[Any], int]:
    """GetRecords from a shell-safe (or moto's) iterator; the next one is shell-safe."""
    name, shard_id, last = decode_iterator(shard_iterator)
    stream = self.describe_stream(
        stream_arn=stream_arn, stream_name=None if stream_arn or name == "None" else name
    )
    shard = stream.get_shard(shard_id)  # ResourceNotFoundException if it is gone
    store_of(stream, shard)  # restored shards learn their retention
    records, last_seq, behind = shard.get_records(last, limit)
    return encode_iterator(stream.stream_name, shard.shard_id, last_seq), records, behind


@KINESIS.patch(moto.Stream, "put_record")
def put_record(self: Any, partition_key: str, explicit_hash_key: str, data: str) -> tuple[str, str]:
    check_record_size(partition_key, data)
    shard = self.get_shard_for_key(partition_key, explicit_hash_key)
    (seq,) = _put_placed(self, [(shard, partition_key, explicit_hash_key, data)])
    return str(seq), shard.shard_id


@KINESIS.patch(moto.KinesisBackend, "put_records")
def put_records(
    self: Any, stream_arn: str | None, stream_name: str | None, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """moto's checks and errors; then each shard's records in one write under one lock
    (moto's loop took the put lock, a write and a wake-up per record)."""
    stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
    _check_entries(records)
    if len(records) > 500:
        raise hot.TooManyRecords()
    sizes = [blob_size(r.get("Data") or "") + len(r.get("PartitionKey") or "") for r in records]
    if sum(sizes) > 5 * 1024 * 1024:
        raise hot.TotalRecordsSizeExceedsLimit()
    over = next((i for i, n in enumerate(sizes) if n > MAX_RECORD_BYTES), None)
    if over is not None:
        raise hot.RecordSizeExceedsLimit(position=over + 1)
    placed = []
    routed: dict[Any, Any] = {}  # a fleet repeats its device ids: one MD5 + scan per key
    for r in records:
        pk, ehk, data = r.get("PartitionKey"), r.get("ExplicitHashKey"), r.get("Data")
        if ehk:
            shard = stream.get_shard_for_key(pk, ehk)
        elif (shard := routed.get(pk)) is None:
            shard = routed[pk] = stream.get_shard_for_key(pk, ehk)
        placed.append((shard, pk, ehk, data))
    seqs = _put_placed(stream, placed)
    self._send_stream_metrics(
        stream.stream_name, incoming_bytes=sum(sizes), incoming_records=len(records)
    )
    names: dict[int, str] = {}  # moto formats a shard's id on every read
    return {
        "FailedRecordCount": 0,
        "Records": [
            {"SequenceNumber": str(seq), "ShardId": _shard_name(p[0], names)}
            for seq, p in zip(seqs, placed, strict=True)
        ],
    }


def _shard_name(shard: Any, names: dict[int, str]) -> str:
    name = names.get(id(shard))
    if name is None:
        name = names[id(shard)] = shard.shard_id
    return name


def _check_entries(records: Any) -> None:
    """Kinesis' ValidationException for entries that are not {Data, PartitionKey} strings."""
    if not isinstance(records, list):
        raise moto.JsonRESTError("ValidationException", "Records must be a list of entries.")
    for i, r in enumerate(records, start=1):
        for field in ("Data", "PartitionKey"):
            value = r.get(field) if isinstance(r, dict) else None
            if not isinstance(value, str):
                raise moto.JsonRESTError(
                    "ValidationException",
                    f"1 validation error detected: Value at 'records.{i}.member.{field[0].lower()}"
                    f"{field[1:]}' failed to satisfy constraint: Member must be a string",
                )


def _put_placed(stream: Any, placed: list[tuple[Any, Any, Any, Any]]) -> list[int]:
    """Store (shard, partition key, hash key, data) records; their sequence numbers."""
    by_shard: dict[int, list[int]] = {}  # by the shard object: one call, one shard map
    for i, item in enumerate(placed):
        by_shard.setdefault(id(item[0]), []).append(i)
    seqs = [0] * len(placed)
    with _PUT_LOCK:
        for at in by_shard.values():
            shard = placed[at[0]][0]
            store = store_of(stream, shard)
            newest = edge_key(store, last=True) if isinstance(store, dict) else store.log.last()
            if newest is None:
                first = SEQ_BASE + moto.shard_index(shard) * SEQ_SHARD_SPAN + 1
            else:
                first = newest + 1
            if isinstance(store, kinesisstore.DiskRecords):
                ticket = store.put_many(first, [placed[i][1:] for i in at])
            else:  # --ephemeral: moto's own Records
                for k, i in enumerate(at):
                    _, pk, ehk, data = placed[i]
                    record = moto.new_record(pk, data, first + k, ehk)
                    ticket = store.put(first + k, pk, ehk, data, record)
            for k, i in enumerate(at):
                seqs[i] = first + k
            kinesisstore.pending(store, ticket)  # the response waits (`wait_pending`)
    COUNTERS.add("records_put", len(placed))
    notify_put()
    return seqs


@KINESIS.patch(moto.KinesisResponse, "put_records")
def put_records_response(self: Any) -> str:
    """PutRecords answered as plain JSON: moto's model-driven serializer is ~70% of its cost."""
    body = moto.request_body(self)  # once (moto's _get_param parses it per parameter)
    try:
        result = self.kinesis_backend.put_records(
            body.get("StreamARN"), body.get("StreamName"), body.get("Records") or []
        )
    finally:
        kinesisstore.wait_pending()  # durable before acknowledged (one shared fsync)
    return json.dumps(result)


@KINESIS.patch(moto.KinesisResponse, "put_record", pass_original=True)
def put_record_response(original: Callable[[Any], Any], self: Any) -> Any:
    """PutRecord acknowledged only once its record is durable."""
    try:
        return original(self)
    finally:
        kinesisstore.wait_pending()


@KINESIS.patch(moto.KinesisBackend, "delete_stream", pass_original=True)
def delete_stream(
    original: Callable[..., Any], self: Any, stream_arn: str | None, stream_name: str | None
) -> Any:
    """A deleted stream's records go with it (its files too)."""
    stream = original(self, stream_arn, stream_name)
    kinesisstore.drop_stream(stream.account_id, stream.region, stream.stream_name)
    return stream
