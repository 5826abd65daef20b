"""moto's S3, made durable (the "s3" service): every object version reaches `s3store`.

moto keeps a bucket's objects in a key store (``key -> [versions]``) that every write and
delete goes through: PutObject, CopyObject, CompleteMultipartUpload and the emulator's
own writes (`motointernals_lake.put_object`: Firehose's Parquet and error objects,
Athena's result files) end in ``setlist`` or ``__setitem__``; DeleteObject(s) in ``pop``
or ``setlist``. The hooks there save an object (bytes, then metadata) before moto holds it,
so a put that returned is on disk and a put that failed (a full disk: ServiceUnavailable)
is not in the bucket either; the headers moto sets after the put (content type, user
metadata, ACL, tags) are saved again before the reply (``set_metadata``,
``put_object_tagging``); deletes and DeleteBucket remove rows and unused blobs.

The buckets (their configuration, policies, versioning) come back with the control
snapshot, which pickles every object as a placeholder; at ``open`` each bucket gets its
objects back from the store. Not kept: delete markers of versioned buckets (the
versions stay deleted only if no marker is needed: a restart shows the newest
surviving version) and multipart uploads still in progress (restart them).

With persistence on, objects larger than `SPILL_BYTES` are held by moto in temporary
files rather than in the heap. With persistence off every hook is moto's method.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from iotpipe.local import motointernals_lake as lake
from iotpipe.local import snapshot
from iotpipe.local.durable import PERSISTENCE, Part
from iotpipe.local.patching import service
from iotpipe.local.s3store import DiskFull, S3Store

log = logging.getLogger("iotpipe.local.s3")
S3 = service("s3")
STORE = S3Store()
SPILL_BYTES = 256 * 1024


def _save(name: str, key: Any) -> None:
    bucket = lake.key_bucket_id(key)
    if bucket is None:
        return
    try:
        STORE.save(bucket, name, key.version_id, lake.key_bytes(key), lake.key_state(key))
    except DiskFull as exc:
        raise lake.S3Unavailable("ServiceUnavailable", f"{exc}; free space and retry") from exc


def _same(a: Any, versions: list[Any] | tuple[Any, ...]) -> bool:
    return any(a is v for v in versions)


@S3.patch(lake.KeyStore, "setlist", pass_original=True)
def setlist(original: Any, self: Any, key: Any, list_: Any) -> Any:
    if not STORE.enabled:
        return original(self, key, list_)
    before = list(self.getlist(key, []))
    after = list_ if isinstance(list_, list | tuple) else [list_]
    added = [v for v in after if not _same(v, before)]
    for version in added:
        _save(key, version)
    result = original(self, key, list_)
    kept = {v.version_id for v in after if lake.key_bucket_id(v)}
    for version in before:
        bucket = lake.key_bucket_id(version)
        if bucket and not _same(version, after) and version.version_id not in kept:
            STORE.forget(bucket, key, version.version_id)
    return result


@S3.patch(lake.KeyStore, "__setitem__", pass_original=True)
def setitem(original: Any, self: Any, key: str, value: Any) -> Any:
    if STORE.enabled:
        _save(key, value)
    return original(self, key, value)


@S3.patch(lake.KeyStore, "pop", pass_original=True)
def pop(original: Any, self: Any, key: str) -> None:
    versions = list(self.getlist(key, [])) if STORE.enabled else []
    original(self, key)
    buckets = {lake.key_bucket_id(v) for v in versions} - {None}
    for bucket in buckets:
        STORE.forget(str(bucket), key)


def _resave(key: Any) -> None:
    bucket = lake.key_bucket_id(key)
    if bucket is None or not STORE.enabled:
        return
    try:
        STORE.update_state(bucket, key.name, key.version_id, lake.key_state(key))
    except DiskFull as exc:
        raise lake.S3Unavailable("ServiceUnavailable", f"{exc}; free space and retry") from exc


@S3.patch(lake.FakeKey, "set_metadata", pass_original=True)
def set_metadata(original: Any, self: Any, metadata: Any, replace: bool = False) -> None:
    """Content type and user metadata: moto sets them once the object is stored."""
    original(self, metadata, replace)
    _resave(self)


@S3.patch(lake.S3Backend, "put_object_tagging", pass_original=True)
def put_object_tagging(original: Any, self: Any, key: Any, tags: dict[str, str] | None) -> Any:
    """The last step of PutObject (after its ACL and headers): the metadata as answered."""
    result = original(self, key, tags)
    _resave(key)
    return result


@S3.patch(lake.S3Backend, "delete_bucket", pass_original=True)
def delete_bucket(original: Any, self: Any, bucket_name: str) -> Any:
    result = original(self, bucket_name)
    if result is not None and STORE.enabled:
        STORE.forget_bucket(lake.bucket_id(self, bucket_name))
    return result


# -- the part ------------------------------------------------------------------------------
def _placeholder() -> None:
    """What an object is in the control snapshot: its bucket gets it back from `STORE`."""
    return None


def restore() -> int:
    """Give every bucket the control snapshot restored its objects; how many versions.

    Objects of a bucket that is not there (the snapshot lost it) stay on disk untouched.
    """
    saved = STORE.load()
    count = 0
    for bucket_id, bucket in lake.all_buckets():
        rows = saved.pop(bucket_id, [])
        versions = []
        for name, digest, state in rows:
            state["_max_buffer_size"] = min(
                int(state.get("_max_buffer_size") or SPILL_BYTES), SPILL_BYTES
            )
            versions.append((name, lake.key_from(state, STORE.read(digest))))
        lake.set_keys(bucket, versions)
        count += len(versions)
    for bucket_id, rows in saved.items():
        log.warning("%d saved objects of bucket %s, which is gone: kept", len(rows), bucket_id)
    return count


def open_part(where: Path) -> None:
    os.environ.setdefault("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(SPILL_BYTES))
    STORE.open(where)
    log.info("restored %d S3 objects", restore())


snapshot.register_reducer(lake.FakeKey, lambda _key: (_placeholder, ()))
PART = PERSISTENCE.register(Part("s3", open=open_part, close=STORE.close, usage=STORE.usage))
