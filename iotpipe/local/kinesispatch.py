"""Replacements for moto's Kinesis and server dispatch (wired in by `patches`).

moto recomputes the last sequence number by listing every key of a shard on each put
(O(n): puts slow down as the stream grows), is not thread-safe on put, scans a shard from
its start on GetRecords, serializes PutRecords responses with a slow generic serializer,
lists its own package directory on every request, and invokes the mapped function once
per record. Sequence numbers here are 56 digits like AWS's, so string order is numeric
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
from typing import Any

from iotpipe.local.counters import COUNTERS
from iotpipe.local.runtime import original

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
    records = shard.records
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


def max_seq(self: Any) -> int:
    return edge_key(self.records, last=True) or 0


def min_seq(self: Any) -> int:
    return edge_key(self.records) or 0


def get_records(self: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
    last = int(last_sequence_id)
    records = shard_records(self, last, int(limit or 10000))
    if records:
        last = records[-1].sequence_number
        newest = self.records[edge_key(self.records, last=True)]
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
        from moto.core.exceptions import JsonRESTError

        raise JsonRESTError(
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
    from moto.kinesis.exceptions import InvalidArgumentError

    text = "".join(str(iterator or "").split()).replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    parts = raw.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise InvalidArgumentError("Invalid ShardIterator.")
    return parts[0], parts[1], parts[2]


def get_shard_iterator(
    self: Any,
    stream_arn: str | None,
    stream_name: str | None,
    shard_id: str,
    shard_iterator_type: str,
    starting_sequence_number: int,
    at_timestamp: Any,
) -> str:
    """moto's position (and validation), in the shell-safe form; names the stream always."""
    from moto.kinesis.utils import decompose_shard_iterator

    moto_form = original("moto.kinesis.models", "KinesisBackend", "get_shard_iterator")(
        self,
        stream_arn,
        stream_name,
        shard_id,
        shard_iterator_type,
        starting_sequence_number,
        at_timestamp,
    )
    stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
    _, shard, last = decompose_shard_iterator(moto_form)
    return encode_iterator(stream.stream_name, shard, last)


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


def put_record(self: Any, partition_key: str, explicit_hash_key: str, data: str) -> tuple[str, str]:
    from moto.kinesis.models import Record

    check_record_size(partition_key, data)
    shard = self.get_shard_for_key(partition_key, explicit_hash_key)
    with _PUT_LOCK:
        if shard.records:
            seq = next(reversed(shard.records)) + 1
        else:
            seq = SEQ_BASE + shard._shard_id * SEQ_SHARD_SPAN + 1
        shard.records[seq] = Record(partition_key, data, seq, explicit_hash_key)
    COUNTERS.add("records_put")
    notify_put()
    return str(seq), shard.shard_id


def put_records_response(self: Any) -> str:
    """PutRecords answered as plain JSON: moto's model-driven serializer is ~70% of its cost."""
    body = json.loads(self.body or "{}")  # once (moto's _get_param parses it per parameter)
    result = self.kinesis_backend.put_records(
        body.get("StreamARN"), body.get("StreamName"), body.get("Records") or []
    )
    return json.dumps(result)


_HOSTS: dict[str | None, Any] = {}


def backend_for_host(self: Any, host: str | None) -> Any:
    """Cached: moto lists its package directory (~180 stat calls) on every request."""
    if host in _HOSTS:
        return _HOSTS[host]
    found = original(
        "moto.moto_server.werkzeug_app", "DomainDispatcherApplication", "get_backend_for_host"
    )(self, host)
    if len(_HOSTS) < 512:
        _HOSTS[host] = found
    return found
