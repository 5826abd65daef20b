"""The control plane's persistence: a snapshot of moto's backends, part "control".

Every resource the pipeline creates (IAM roles and policies, streams, functions with their
code and mappings, Timestream databases and tables, queues, log groups, IoT rules, things,
policies and certificates, buckets, Glue, Athena workgroups, delivery streams) lives in
moto's backends, so one pickle of all of them (`motointernals_state.registries`) is the
control plane. It is written to ``data/control/snapshot.pickle`` with
`durable.write_durably` (a crash mid-write leaves the previous snapshot whole):

- synchronously after every successful mutating control-plane request, before the
  response goes out (`after_mutation`), so a change that was acknowledged exists after a
  ``kill -9``; concurrent mutations share one write (a request whose change a snapshot
  taken after it already covers does not write again);
- every `PERIOD_S` when anything changed without a synchronous write (`mark_dirty`:
  data-plane requests, the emulator's own writes such as function logs);
- at clean stop (`close`).

Durability policy: a control-plane change is fsync'ed before it is acknowledged; what
rides along in the snapshot without being a control-plane change (log events, say) is
durable within `PERIOD_S`.

Pickling is extensible: a data-plane part keeps its bulk in its own files and registers a
reducer (`register_reducer`) so its container pickles as a small reference and reattaches
at its part's ``open``. Locks, conditions, events and semaphores pickle as fresh ones;
anything else that cannot pickle fails the snapshot with the attribute path that holds it.

The file starts with a one-line JSON header (format, moto version, payload length and
CRC32) ahead of the pickle, so a snapshot from another moto, or a truncated or corrupt
one, is a `durable.StateError` with the ways out, read before unpickling anything.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import pickle
import threading
import time
import weakref
import zlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iotpipe.local import motointernals_state as moto_state
from iotpipe.local.durable import (
    FORMAT,
    PERSISTENCE,
    Part,
    StateError,
    stamp,
    unreadable,
    ways_out,
    write_durably,
)

log = logging.getLogger("iotpipe.local.snapshot")

FILE = "snapshot.pickle"
MAGIC = b"IOTPIPE-CONTROL-SNAPSHOT\n"
PERIOD_S = 2.0
RETRIES = 5  # a dict another thread grows while we pickle: try again

Reducer = Callable[[Any], Any]
_EXACT: dict[type, Reducer] = {}
_BY_BASE: list[tuple[type, Reducer]] = []
_LOCK_TYPE = type(threading.Lock())
_RLOCK_TYPE = type(threading.RLock())


def register_reducer(cls: type, reducer: Reducer) -> None:
    """Pickle instances of ``cls`` (or a subclass) as ``reducer(obj)`` (a __reduce__ value)."""
    _EXACT[cls] = reducer
    _BY_BASE.append((cls, reducer))


def _fresh_event(was_set: bool) -> threading.Event:
    event = threading.Event()
    if was_set:
        event.set()
    return event


def _is_closure(factory: Any) -> bool:
    return "<" in str(getattr(factory, "__qualname__", ""))  # <lambda>, <locals>


class Fresh:
    """A picklable default factory for a defaultdict made with a lambda (moto's
    ``defaultdict(lambda: {})``): a copy of what the lambda returned."""

    def __init__(self, sample: Any) -> None:
        self.sample = sample

    def __call__(self) -> Any:
        return copy.deepcopy(self.sample)


def _sync_reduce(obj: Any) -> Any:
    """Synchronization objects come back fresh (nothing holds them after a restart); weak
    containers as new ones over the same referents (their callbacks are closures)."""
    kind = type(obj)
    if kind is _LOCK_TYPE:
        return (threading.Lock, ())
    if kind is _RLOCK_TYPE:
        return (threading.RLock, ())
    if isinstance(obj, threading.Condition):
        return (threading.Condition, (obj._lock,))  # type: ignore[attr-defined]
    if isinstance(obj, threading.Event):
        return (_fresh_event, (obj.is_set(),))
    if isinstance(obj, threading.Semaphore):  # BoundedSemaphore too
        return (type(obj), (obj._value,))  # type: ignore[attr-defined]
    if isinstance(obj, weakref.WeakValueDictionary | weakref.WeakKeyDictionary):
        return (type(obj), (dict(obj.items()),))  # the referents pickle where they live
    factory = getattr(obj, "default_factory", None)
    if isinstance(obj, defaultdict) and factory is not None and _is_closure(factory):
        return (defaultdict, (Fresh(factory()), dict(obj)))
    if isinstance(obj, weakref.WeakSet):
        return (weakref.WeakSet, (list(obj),))
    return NotImplemented


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        reducer = _EXACT.get(type(obj))
        if reducer is None:
            for base, candidate in _BY_BASE:
                if isinstance(obj, base):
                    reducer = candidate
                    break
        if reducer is not None:
            return reducer(obj)
        return _sync_reduce(obj)


def dumps(obj: Any) -> bytes:
    out = io.BytesIO()
    _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return out.getvalue()


def _children(obj: Any) -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        return [(f"[{k!r}]", v) for k, v in list(obj.items())]
    if isinstance(obj, list | tuple | set | frozenset):
        return [(f"[{i}]", v) for i, v in enumerate(list(obj))]
    state = getattr(obj, "__dict__", None)
    return [(f".{k}", v) for k, v in list(state.items())] if isinstance(state, dict) else []


def culprit(obj: Any, path: str = "backends", depth: int = 14) -> str:
    """The attribute path of the innermost part of ``obj`` that does not pickle."""
    for label, child in _children(obj):
        try:
            dumps(child)
        except Exception as exc:
            if depth <= 0:
                return f"{path}{label} ({type(exc).__name__}: {exc})"
            return culprit(child, path + label, depth - 1)
    return path


def encode(payload: Any) -> bytes:
    """Header line + pickle; raises SnapshotError naming what could not be pickled."""
    for attempt in range(RETRIES):
        try:
            body = dumps(payload)
            break
        except RuntimeError as exc:  # "changed size during iteration": try again
            if attempt == RETRIES - 1:
                raise SnapshotError(f"moto's state kept changing while saved: {exc}") from exc
        except Exception as exc:
            raise SnapshotError(
                f"cannot save {culprit(payload)}: {type(exc).__name__}: {exc}"
            ) from exc
    header = {**stamp(), "bytes": len(body), "crc32": zlib.crc32(body), "at": time.time()}
    return MAGIC + json.dumps(header).encode() + b"\n" + body


def decode(data: bytes, where: Path) -> Any:
    """The payload of a snapshot file; StateError if it is another version's or damaged."""
    root = where.parent.parent
    if not data.startswith(MAGIC) or b"\n" not in data[len(MAGIC) :]:
        raise StateError(unreadable(root, f"{where.name} is not a snapshot"))
    line, _, body = data[len(MAGIC) :].partition(b"\n")
    try:
        header = json.loads(line)
    except ValueError:
        raise StateError(unreadable(root, f"{where.name} has a damaged header")) from None
    want = stamp()
    if (header.get("format"), header.get("moto")) != (FORMAT, want["moto"]):
        raise StateError(
            f"The embedded AWS's control-plane snapshot {where} was written with moto "
            f"{header.get('moto', '?')} (format {header.get('format', '?')}); this is moto "
            f"{want['moto']} (format {FORMAT}), which cannot read it. " + ways_out(root)
        )
    if len(body) != header.get("bytes") or zlib.crc32(body) != header.get("crc32"):
        raise StateError(
            unreadable(
                root,
                f"{where.name} is truncated or corrupt: {len(body):,} of "
                f"{header.get('bytes', 0):,} bytes, checksum mismatch",
            )
        )
    try:
        return pickle.loads(body)  # noqa: S301 (our own file, mode 0600, in the user's home)
    except Exception as exc:
        why = f"{where.name} does not load: {type(exc).__name__}: {exc}"
        raise StateError(unreadable(root, why)) from None


class SnapshotError(Exception):
    """moto's state could not be pickled (a new unpicklable attribute: the path says where)."""


class ControlSnapshot:
    """The "control" part: restore at open, write after mutations, periodically, at close."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._write = threading.Lock()  # one writer: write_durably's tmp file is shared
        self._state = threading.Lock()
        self._done = 0  # requests finished so far
        self._covered = 0  # requests whose changes the last written snapshot holds
        self._dirty = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writes = 0
        self.write_ms_total = 0.0
        self.last_error = ""
        self.last_bytes = 0

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def open(self, where: Path) -> None:
        self.path = where / FILE
        if self.path.exists():
            saved = decode(self.path.read_bytes(), self.path)
            restored = moto_state.restore(saved["backends"])
            log.info("restored %d moto backends from %s", restored, self.path)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="snapshot", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.enabled:
            self.save()
        self.path = None

    def flush(self) -> None:
        if self.enabled:
            self.save()

    def usage(self) -> int:
        return self.path.stat().st_size if self.path and self.path.exists() else 0

    # -- when to write -------------------------------------------------------------------
    def mark_dirty(self) -> None:
        self._dirty = True

    def after_mutation(self) -> None:
        """Make the change of the request that just succeeded durable (before its reply)."""
        if not self.enabled:
            return
        with self._state:
            self._done += 1
            mine = self._done
        with self._write:
            if self._covered >= mine:  # a snapshot taken after our change holds it
                return
            self._save_locked()

    def save(self) -> None:
        with self._write:
            self._save_locked()

    def _save_locked(self) -> None:
        assert self.path is not None
        with self._state:
            upto = self._done
            self._dirty = False
        began = time.perf_counter()
        try:
            data = encode({"backends": moto_state.registries()})
            write_durably(self.path, data)
        except Exception as exc:
            self._dirty = True
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.error("control-plane snapshot failed: %s", self.last_error)
            raise
        self._covered = max(self._covered, upto)
        self.writes += 1
        self.last_bytes = len(data)
        self.write_ms_total += (time.perf_counter() - began) * 1000

    def _loop(self) -> None:
        while not self._stop.wait(PERIOD_S):
            if self._dirty and self.enabled:
                with contextlib.suppress(Exception):  # logged; retried next period
                    self.save()

    def stats(self) -> dict[str, Any]:
        mean = self.write_ms_total / self.writes if self.writes else 0.0
        return {
            "writes": self.writes,
            "mean_ms": round(mean, 2),
            "bytes": self.last_bytes,
            "last_error": self.last_error,
        }


CONTROL = ControlSnapshot()
_PART = PERSISTENCE.register(
    Part(
        "control", open=CONTROL.open, close=CONTROL.close, flush=CONTROL.flush, usage=CONTROL.usage
    )
)
# First whatever imported first: the data parts restore into the resources it restores.
PERSISTENCE.parts.remove(_PART)
PERSISTENCE.parts.insert(0, _PART)
