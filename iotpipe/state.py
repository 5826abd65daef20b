"""The per-deployment state file: a cache of what ``up`` made, written after every step.

Names derive from config + suffix and resources are tagged, so losing this file loses
nothing but the suffix (``down --suffix`` or discovery recovers it). It must still never be
half-written: a crash mid-write would otherwise lose the suffix of a live deployment, hence
write-to-temp + ``os.replace``. Only names, ARNs and ids go here: never credentials.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def home() -> Path:
    """iotpipe's working directory (state, embedded AWS), ``.iotpipe`` unless IOTPIPE_HOME."""
    return Path(os.environ.get("IOTPIPE_HOME", ".iotpipe"))


def atomic_write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class State:
    """Thread-safe: independent steps of ``up`` record their results concurrently."""

    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self.data: dict[str, Any] = data or {"resources": {}}
        self.data.setdefault("resources", {})
        self._lock = threading.Lock()

    @classmethod
    def for_deployment(cls, name: str, base: Path | None = None) -> State:
        path = (base or home()) / f"{name}.json"
        if path.is_file():
            try:
                return cls(path, json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                pass  # a cache: an unreadable one is as good as none
        return cls(path)

    @property
    def suffix(self) -> str | None:
        return self.data.get("suffix")

    @property
    def resources(self) -> dict[str, Any]:
        return self.data["resources"]

    def exists(self) -> bool:
        return self.path.is_file()

    def set(self, **values: Any) -> None:
        with self._lock:
            self.data.update(values)
            self._save()

    def record(self, key: str, info: dict[str, Any] | None) -> None:
        """Remember (or, with None, forget) one resource, and persist at once."""
        with self._lock:
            if info is None:
                self.data["resources"].pop(key, None)
            else:
                self.data["resources"][key] = info
            self._save()

    def _save(self) -> None:
        self.data["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        atomic_write_json(self.path, self.data)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
