"""Replacements for moto's Kinesis and server dispatch (wired in by `patches`).

moto recomputes the last sequence number by listing every key of a shard on each put
(O(n): puts slow down as the stream grows), is not thread-safe on put, scans a shard from
its start on GetRecords, serializes PutRecords responses with a slow generic serializer,
lists its own package directory on every request, and invokes the mapped function once
per record. Sequence numbers here are 56 digits like AWS's, so string order is numeric
order, and a shard's numbers are consecutive, which makes reads O(batch).
"""

from __future__ import annotations

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
    out = []
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


def put_record(self: Any, partition_key: str, explicit_hash_key: str, data: str) -> tuple[str, str]:
    from moto.kinesis.models import Record

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
