"""Where a Kinesis shard's records live: on disk (`segments`), or in memory ``--ephemeral``.

moto keeps a shard's records in ``shard.records``, an OrderedDict of ``Record`` objects;
`kinesispatch` replaces it with one of these, so every reader (moto's responses, the
pollers in `esm`, `firehose`) goes through the same dict subset: ``get``, ``[]``, ``in``,
``len``, iteration oldest first, ``keys``/``values``/``items``, ``reversed`` (the edge
keys). Puts go through `put` (which returns a ticket) and the request waits for its
tickets once, after all its records are written (`wait_pending`): one PutRecords of 500
records waits for one shared fsync, not 500.

Persistent, the store registers the part "kinesis": files under
``data/kinesis/<account>/<region>/<stream>/<shard>/``. The control snapshot pickles each
store as a reference (`reattach`); this part's open() opens those references' files, so
the restored shards find their records. Durability policy: see `segments`.
"""

from __future__ import annotations

import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from iotpipe.local.durable import PERSISTENCE, Part
from iotpipe.local.segments import DiskFull, ShardLog, Stored

Make = Callable[[Stored], Any]  # a stored record -> moto's Record


class MemoryRecords(OrderedDict[int, Any]):
    """Today's behaviour (``--ephemeral``): moto's records, in the heap."""

    make: Make | None = None
    retention_s: float | None = None

    def put(self, seq: int, pk: str, ehk: str | None, data: str, record: Any) -> int:
        self[seq] = record
        return 0

    def wait_durable(self, ticket: int) -> None:
        return None

    def first_key(self) -> int | None:
        """The oldest key while another thread may be inserting (then: look again)."""
        while True:
            try:
                return next(iter(self), None)
            except RuntimeError:  # changed size between iter() and next()
                continue

    def read_after(self, after: int, limit: int) -> list[Any]:
        first = self.first_key()
        out: list[Any] = []
        if first is None:
            return out
        seq = max(after + 1, first)
        while len(out) < limit:
            rec = self.get(seq)
            if rec is None:
                break
            out.append(rec)
            seq += 1
        return out


class DiskRecords:
    """A shard's records in its segment files, seen as moto's dict of ``Record``s."""

    def __init__(self, key: tuple[str, str, str, str], log: ShardLog, make: Make) -> None:
        self.key, self.log, self.make = key, log, make

    def __reduce__(self) -> tuple[Any, ...]:
        return (reattach, self.key)

    @property
    def retention_s(self) -> float | None:
        return self.log.retention_s

    @retention_s.setter
    def retention_s(self, value: float | None) -> None:
        self.log.retention_s = value

    def put(self, seq: int, pk: str, ehk: str | None, data: str, record: Any) -> int:
        try:
            return self.log.append(seq, pk, ehk, data)
        except DiskFull as exc:
            raise disk_full(exc) from exc

    def put_many(self, first: int, records: list[tuple[str, str | None, str]]) -> int:
        try:
            return self.log.append_many(first, records)
        except DiskFull as exc:
            raise disk_full(exc) from exc

    def wait_durable(self, ticket: int) -> None:
        try:
            self.log.wait_durable(ticket)
        except DiskFull as exc:
            raise disk_full(exc) from exc

    def read_after(self, after: int, limit: int) -> list[Any]:
        return [self.make(s) for s in self.log.read_after(after, limit)]

    def get(self, seq: int, default: Any = None) -> Any:
        found = self.log.get_stored(seq)
        return default if found is None else self.make(found)

    def __getitem__(self, seq: int) -> Any:
        found = self.get(seq)
        if found is None:
            raise KeyError(seq)
        return found

    def __setitem__(self, seq: int, record: Any) -> None:
        """moto's own puts (split/merge re-puts): written, and waited for."""
        ticket = self.put(seq, record.partition_key, record.explicit_hash_key, record.data, record)
        self.wait_durable(ticket)

    def __contains__(self, seq: object) -> bool:
        return isinstance(seq, int) and self.log.get_stored(seq) is not None

    def __len__(self) -> int:
        return self.log.count()

    def __bool__(self) -> bool:
        return self.log.count() > 0

    def __iter__(self) -> Iterator[int]:
        return self.log.seqs()

    def __reversed__(self) -> Iterator[int]:
        first, last = self.log.first(), self.log.last()
        if first is None or last is None:
            return iter(())
        return iter(range(last, first - 1, -1))

    def keys(self) -> Iterator[int]:
        return iter(self)

    def values(self) -> Iterator[Any]:
        seq = (self.log.first() or 1) - 1
        while batch := self.read_after(seq, 1000):
            yield from batch
            seq = batch[-1].sequence_number

    def items(self) -> Iterator[tuple[int, Any]]:
        for rec in self.values():
            yield rec.sequence_number, rec


def disk_full(exc: DiskFull) -> Exception:
    from iotpipe.local import motointernals as moto

    return moto.Unavailable(
        f"the embedded AWS's disk is full ({exc}): free space there and retry; "
        "records acknowledged before are kept"
    )


# -- the registry of open stores -------------------------------------------------------------
_LOCK = threading.Lock()
_OPEN: dict[tuple[str, str, str, str], DiskRecords] = {}
MAKE: list[Make] = []  # set by kinesispatch (it knows moto's Record)
_PENDING = threading.local()


def shard_dir(key: tuple[str, str, str, str]) -> Path:
    return PERSISTENCE.dir("kinesis").joinpath(*key)


def records_for(key: tuple[str, str, str, str]) -> Any:
    """A new shard's store: on disk when persistent, else moto's own kind of dict."""
    if not PERSISTENCE.enabled:
        return MemoryRecords()
    return reattach(*key)


def reattach(account: str, region: str, stream: str, shard: str) -> DiskRecords:
    """The store of that shard, its files opened (the control snapshot unpickles to this)."""
    key = (account, region, stream, shard)
    with _LOCK:
        found = _OPEN.get(key)
        if found is None:
            found = DiskRecords(key, ShardLog(shard_dir(key)).open(), lambda s: MAKE[0](s))
            _OPEN[key] = found
        return found


def drop_stream(account: str, region: str, stream: str) -> None:
    """The stream was deleted: close and delete its shards' files."""
    with _LOCK:
        for key in [k for k in _OPEN if k[:3] == (account, region, stream)]:
            _OPEN.pop(key).log.destroy()
    if PERSISTENCE.enabled:
        shutil.rmtree(PERSISTENCE.dir("kinesis") / account / region / stream, ignore_errors=True)


def pending(store: Any, ticket: int) -> None:
    """Remember that this request must wait for ``ticket`` of ``store`` (`wait_pending`)."""
    held: dict[int, tuple[Any, int]] = getattr(_PENDING, "held", None) or {}
    held[id(store)] = (store, max(ticket, held.get(id(store), (store, 0))[1]))
    _PENDING.held = held


def wait_pending() -> None:
    """Block until every record this thread put is durable (before acknowledging)."""
    wait_for(take_pending())


def take_pending() -> list[tuple[Any, int]]:
    """What this thread must wait for, handed over (to wait on another thread: `wait_for`)."""
    held: dict[int, tuple[Any, int]] = getattr(_PENDING, "held", None) or {}
    _PENDING.held = {}
    return list(held.values())


def wait_for(pending: list[tuple[Any, int]]) -> None:
    for store, ticket in pending:
        store.wait_durable(ticket)


# -- the part ------------------------------------------------------------------------------
# Run when the part opens, after the control snapshot is restored (`kinesispatch` adds
# the one that gives every restored shard its store: a shard snapshotted before its first
# put was pickled with moto's empty dict, and its files must still be found).
ON_OPEN: list[Callable[[], None]] = []


def _open(where: Path) -> None:
    """Stores the control snapshot unpickled opened their files already (`reattach`);
    the ``ON_OPEN`` hooks attach the rest."""
    where.mkdir(parents=True, exist_ok=True)
    for hook in ON_OPEN:
        hook()


def _close() -> None:
    with _LOCK:
        for found in _OPEN.values():
            found.log.close()
        _OPEN.clear()


def _usage() -> int:
    with _LOCK:
        return sum(s.log.bytes_used() for s in _OPEN.values())


def _oldest() -> float | None:
    with _LOCK:
        found = [s.log.oldest() for s in _OPEN.values()]
    times = [t for t in found if t is not None]
    return min(times) if times else None


PART = PERSISTENCE.register(Part("kinesis", _open, _close, lambda: None, _usage, _oldest))
