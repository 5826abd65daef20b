"""The per-deployment state file: a cache of what ``up`` made, written after every step.

Names derive from config + suffix and resources are tagged, so losing this file loses
nothing but the suffix (``down --suffix`` or discovery recovers it). It must still never be
half-written: a crash mid-write would otherwise lose the suffix of a live deployment, hence
write-to-temp + ``os.replace``. Only names, ARNs and ids go here: never credentials.

A deployment is (name, target, region, account), so that is the file's name:
``<home>/<name>.<target>.<region>.<account>.json``. The same name in another region or
account has its own file and never takes this one's suffix. The pre-region file
``<home>/<name>.json`` is still read, and moved, when it describes the same deployment.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def home() -> Path:
    """iotpipe's working directory (state, embedded AWS), ``.iotpipe`` unless IOTPIPE_HOME."""
    return Path(os.environ.get("IOTPIPE_HOME", ".iotpipe"))


def write_private(path: Path, data: str | bytes) -> None:
    """Replace ``path`` atomically with a file that is 0600 from its first byte (a private
    key, a token): a temporary sibling made 0600 (umask can only remove bits), renamed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


@dataclass(frozen=True)
class Identity:
    """What tells one deployment of a name from another: where it lives."""

    name: str
    target: str
    region: str
    account: str

    def file_name(self, suffix: str | None = None, ext: str = "json") -> str:
        stem = self.name if suffix is None else f"{self.name}-{suffix}"
        return f"{stem}.{self.target}.{self.region}.{self.account}.{ext}"

    def fields(self) -> dict[str, str]:
        return {"target": self.target, "region": self.region, "account": self.account}

    def matches(self, data: dict[str, Any]) -> bool:
        return all(data.get(k) == v for k, v in self.fields().items())


def _load(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # a cache: an unreadable one is as good as none
    return data if isinstance(data, dict) else None


class State:
    """Thread-safe: independent steps of ``up`` record their results concurrently."""

    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self.data: dict[str, Any] = data or {"resources": {}}
        self.data.setdefault("resources", {})
        self._lock = threading.Lock()

    @classmethod
    def for_deployment(cls, name: str, base: Path | None = None) -> State:
        """The file ``<base>/<name>.json`` (the layout before identities; tests, tools)."""
        path = (base or home()) / f"{name}.json"
        return cls(path, _load(path))

    @classmethod
    def for_identity(
        cls, ident: Identity, base: Path | None = None, suffix: str | None = None
    ) -> State:
        """This deployment's file; an older ``<name>.json`` of the same one is moved here."""
        base = base or home()
        path = base / ident.file_name(suffix)
        data = _load(path)
        if data is not None or suffix is not None:
            return cls(path, data)
        legacy = base / f"{ident.name}.json"
        old = _load(legacy)
        if old is None or not old.get("suffix") or not ident.matches(old):
            return cls(path)  # none, or another region's/account's/target's: not ours
        state = cls(path, old)
        with state._lock:
            state._save()
        legacy.unlink(missing_ok=True)
        return state

    @property
    def suffix(self) -> str | None:
        return self.data.get("suffix")

    @property
    def resources(self) -> dict[str, Any]:
        return self.data["resources"]

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
