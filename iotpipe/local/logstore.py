"""CloudWatch Logs events that survive a restart, bounded per stream: part "logs".

Function logs (`functions._to_cloudwatch`) and PutLogEvents land in moto's log streams,
which keep every event forever. Here a stream keeps only its newest `MAX_EVENTS` events
(older ones are dropped as new ones arrive; the stream's ``storedBytes`` still counts
everything ever put, as moto does), so a pipeline running for days holds a bounded log.

The events are saved to ``data/logs/events.json`` (`durable.write_durably`: a crash
mid-write leaves the previous file whole) every `PERIOD_S` when any stream changed, at
``flush`` and at clean stop; the control snapshot pickles each event as a placeholder
(`register_reducer`) and the log groups and streams themselves, and at ``open`` every
stream gets its saved events back (a stream the snapshot does not have is recreated with
its group).

Durability policy: log events are not acknowledged data: a clean stop keeps all of them
(up to `MAX_EVENTS` per stream); a ``kill -9`` loses at most the last `PERIOD_S` of
them. A save that fails (a full disk) is logged and retried next period; the previous
file stays intact. In ephemeral mode nothing is bounded or saved (moto's behaviour).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from pathlib import Path
from typing import Any

from iotpipe.local import motointernals_data as data
from iotpipe.local import snapshot
from iotpipe.local.durable import PERSISTENCE, Part, write_durably
from iotpipe.local.patching import service

log = logging.getLogger("iotpipe.local.logs")
LOGS = service("logs")

FILE = "events.json"
FORMAT = 1
MAX_EVENTS = 10_000  # per log stream: the newest are kept
PERIOD_S = 2.0


def _saved_streams() -> list[dict[str, Any]]:
    out = []
    for account, region, group, stream in data.log_streams():
        events = [
            [e.ingestion_time, e.timestamp, e.message, e.event_id]
            for e in list(data.log_events(stream))
            if e is not None
        ]
        out.append(
            {
                "account": account,
                "region": region,
                "group": group,
                "stream": stream.log_stream_name,
                "events": events,
            }
        )
    return out


class LogStore:
    """Saves every stream's events to one file; restores them into moto's streams."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._dirty = False
        self._save = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error = ""

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def mark_dirty(self) -> None:
        self._dirty = True

    def open(self, where: Path) -> None:
        self.path = where / FILE
        restored = self.restore() if self.path.exists() else 0
        log.info("restored %d log events", restored)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="log-store", daemon=True)
        self._thread.start()

    def restore(self) -> int:
        """Every saved stream's events back into moto; streams saved without events: []."""
        assert self.path is not None
        saved = json.loads(self.path.read_text(encoding="utf-8"))
        if saved.get("format") != FORMAT:
            raise ValueError(f"{self.path.name} has format {saved.get('format')!r}")
        by_name = {(a, r, g, s.log_stream_name): s for a, r, g, s in data.log_streams()}
        count = 0
        for entry in saved["streams"]:
            key = (entry["account"], entry["region"], entry["group"], entry["stream"])
            stream = by_name.pop(key, None) or data.log_stream(*key)
            data.set_log_events(stream, [tuple(e) for e in entry["events"]])
            count += len(entry["events"])
        for stream in by_name.values():  # placeholders of events never saved
            data.set_log_events(stream, [])
        return count

    def save(self) -> None:
        """Write every stream's events now (raises OSError, e.g. ENOSPC; file left whole)."""
        if self.path is None:
            return
        with self._save:
            self._dirty = False
            try:
                data = json.dumps({"format": FORMAT, "streams": _saved_streams()})
                write_durably(self.path, data.encode())
            except Exception as exc:
                self._dirty = True
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("saving log events failed (retried in %.0f s): %s", PERIOD_S, exc)
                raise
            self.last_error = ""

    def flush(self) -> None:
        if self.enabled:
            self.save()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        finally:
            self.path = None

    def usage(self) -> int:
        return self.path.stat().st_size if self.path and self.path.exists() else 0

    def _loop(self) -> None:
        while not self._stop.wait(PERIOD_S):
            if self._dirty:
                with contextlib.suppress(Exception):  # logged; retried next period
                    self.save()


STORE = LogStore()


@LOGS.patch(data.LogStream, "put_log_events", pass_original=True)
def put_log_events(original: Any, self: Any, log_events: list[dict[str, Any]]) -> str:
    """moto's put, then the stream trimmed to its newest `MAX_EVENTS` (persistent runs)."""
    token: str = original(self, log_events)
    if STORE.enabled:
        events = data.log_events(self)
        if len(events) > MAX_EVENTS:
            del events[: len(events) - MAX_EVENTS]
        STORE.mark_dirty()
        snapshot.CONTROL.mark_dirty()  # a group or stream the emulator itself created
    return token


def _placeholder() -> None:
    """What an event is in the control snapshot: `STORE` gives it back at open."""
    return None


snapshot.register_reducer(data.LogEvent, lambda _event: (_placeholder, ()))
PART = PERSISTENCE.register(
    Part("logs", open=STORE.open, close=STORE.close, flush=STORE.flush, usage=STORE.usage)
)
