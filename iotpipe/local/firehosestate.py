"""Where each Firehose delivery stream has read its source to: persistence part "firehose".

A delivery stream reads its Kinesis source from per-shard positions (`firehose.Delivery`):
LATEST when it was created, then the last sequence number of each flush whose objects are
all in S3. Without them a restart would start every delivery at the shard's end again and
skip what arrived while it was down (or was buffered, not yet delivered). They are one
small JSON file, ``data/firehose/checkpoints.json``, rewritten with `write_json_durably`
after each flush's last object is written and when a delivery starts, so after a crash a
delivery resumes at its last completed flush: at most that flush's records are delivered
again, none skipped. Keyed by the delivery stream's ARN and creation time, so a stream
deleted and re-created under the same name starts afresh. Ephemeral runs keep them in
memory only, as before.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from iotpipe.local.durable import PERSISTENCE, Part, write_json_durably

FILE = "checkpoints.json"


def key(ds: Any) -> str:
    return f"{ds.delivery_stream_arn}@{getattr(ds, 'create_timestamp', '')}"


class Checkpoints:
    def __init__(self) -> None:
        self.path: Path | None = None
        self.saved: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()

    def open(self, where: Path) -> None:
        self.path = where / FILE
        found = json.loads(self.path.read_text()) if self.path.exists() else {}
        if not isinstance(found, dict):
            raise ValueError(f"{FILE} is not an object")
        self.saved = {str(k): {str(s): int(n) for s, n in v.items()} for k, v in found.items()}

    def close(self) -> None:
        self.path = None

    def get(self, ds: Any) -> dict[str, int] | None:
        with self._lock:
            found = self.saved.get(key(ds))
        return dict(found) if found is not None else None

    def put(self, ds: Any, positions: dict[str, int], live: set[str] | None = None) -> None:
        """Record a delivery's positions (dropping streams no longer `live`), durably."""
        with self._lock:
            self.saved[key(ds)] = {k: int(v) for k, v in positions.items()}
            if live is not None:
                self.saved = {k: v for k, v in self.saved.items() if k in live}
            if self.path is not None:
                write_json_durably(self.path, self.saved)


CHECKPOINTS = Checkpoints()
PERSISTENCE.register(Part("firehose", open=CHECKPOINTS.open, close=CHECKPOINTS.close))
