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
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from typing import Any

from iotpipe.local import motointernals as moto
from iotpipe.local.counters import COUNTERS
from iotpipe.local.patching import service

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
    first = edge_key(records)
    if first is None:
        return []
    seq = max(after + 1, first)
    out: list[Any] = []
    while len(out) < limit:
        rec = records.get(seq)
        if rec is None:
            break
        out.append(rec)
        seq += 1
    return out


@KINESIS.patch(moto.Shard, "get_max_sequence_number")
def max_seq(self: Any) -> int:
    return edge_key(moto.shard_records(self), last=True) or 0


@KINESIS.patch(moto.Shard, "get_min_sequence_number")
def min_seq(self: Any) -> int:
    return edge_key(moto.shard_records(self)) or 0


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
    records, last_seq, behind = shard.get_records(last, limit)
    return encode_iterator(stream.stream_name, shard.shard_id, last_seq), records, behind


@KINESIS.patch(moto.Stream, "put_record")
def put_record(self: Any, partition_key: str, explicit_hash_key: str, data: str) -> tuple[str, str]:
    check_record_size(partition_key, data)
    shard = self.get_shard_for_key(partition_key, explicit_hash_key)
    store = moto.shard_records(shard)
    with _PUT_LOCK:
        if store:
            seq = next(reversed(store)) + 1
        else:
            seq = SEQ_BASE + moto.shard_index(shard) * SEQ_SHARD_SPAN + 1
        store[seq] = moto.new_record(partition_key, data, seq, explicit_hash_key)
    COUNTERS.add("records_put")
    notify_put()
    return str(seq), shard.shard_id


@KINESIS.patch(moto.KinesisResponse, "put_records")
def put_records_response(self: Any) -> str:
    """PutRecords answered as plain JSON: moto's model-driven serializer is ~70% of its cost."""
    body = moto.request_body(self)  # once (moto's _get_param parses it per parameter)
    result = self.kinesis_backend.put_records(
        body.get("StreamARN"), body.get("StreamName"), body.get("Records") or []
    )
    return json.dumps(result)
