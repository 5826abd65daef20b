"""The lake's reads of moto internals: Firehose delivery streams, S3 objects, Glue tables.

A sibling of `motointernals` (same rules: every moto import and every read of a private
attribute or store in one place, reviewed on a moto upgrade), kept apart so the lake
branch does not grow the Kinesis/Lambda boundary past its size. Fields of moto's model
objects that mirror the API (a delivery stream's ``delivery_stream_type``, ``source``,
``destinations``) are read here too, because their layout (the ``"ExtendedS3"`` key of a
destination, ``version_id`` as a string) is moto's, not AWS's.

S3 is written and read through moto's backend, in process: Firehose's own writes are not
API calls, and a put_object replaces the key in one assignment, so an object is either
there whole or not at all.
"""

from __future__ import annotations

from typing import Any

from iotpipe.local.motointernals import regional
from iotpipe.local.patching import moto_imports

with moto_imports():
    from moto.firehose.exceptions import InvalidArgumentException
    from moto.firehose.models import DeliveryStream, FirehoseBackend, firehose_backends
    from moto.glue.models import glue_backends
    from moto.s3.exceptions import S3ClientError
    from moto.s3.models import FakeKey, S3Backend, s3_backends
    from moto.s3.utils import _VersionedKeyStore
    from moto.utilities.utils import get_partition

__all__ = [
    "DeliveryStream",
    "FakeKey",
    "FirehoseBackend",
    "InvalidArgumentException",
    "KeyStore",
    "S3Backend",
]

KeyStore = _VersionedKeyStore  # a bucket's keys: key -> [versions], oldest first

KINESIS_SOURCE = "KinesisStreamAsSource"


# -- Firehose ------------------------------------------------------------------------------
def delivery_streams(backend: Any) -> list[Any]:
    return list(backend.delivery_streams.values())


def all_delivery_streams() -> list[tuple[str, str, Any]]:
    """(account, region, DeliveryStream) for every delivery stream everywhere."""
    return [(a, r, ds) for a, r, b in regional(firehose_backends) for ds in delivery_streams(b)]


def delivery_stream(account: str, region: str, name: str) -> Any:
    """The delivery stream of that name, None if there is none."""
    try:
        return firehose_backends[account][region].delivery_streams.get(name)
    except KeyError:
        return None


def is_kinesis_source(ds: Any) -> bool:
    return str(ds.delivery_stream_type) == KINESIS_SOURCE


def source_stream_arn(ds: Any) -> str:
    """KinesisStreamSourceConfiguration.KinesisStreamARN ("" if absent)."""
    return str((ds.source or {}).get("KinesisStreamARN") or "")


def extended_s3(ds: Any) -> dict[str, Any] | None:
    """The ExtendedS3 destination's configuration as stored (request shape), or S3's."""
    for dest in list(ds.destinations):
        conf = dest.get("ExtendedS3") or dest.get("S3")
        if conf:
            return dict(conf)
    return None


def version(ds: Any) -> str:
    """The config version in object names: 1, then +1 per UpdateDestination."""
    return str(ds.version_id)


# -- S3 ------------------------------------------------------------------------------------
def _s3(account: str, region: str) -> Any:
    return s3_backends[account][get_partition(region)]


def put_object(account: str, region: str, bucket: str, key: str, body: bytes) -> None:
    """Write one object whole (raises if the bucket is missing: the caller retries)."""
    _s3(account, region).put_object(bucket, key, body)


def get_object(account: str, region: str, bucket: str, key: str) -> bytes | None:
    try:
        found = _s3(account, region).get_object(bucket, key)
    except Exception:  # MissingBucket: nothing there either way
        return None
    return None if found is None else bytes(found.value)


def objects(account: str, region: str, bucket: str, prefix: str) -> list[tuple[str, int, str]]:
    """(key, size, etag) of every current object under the prefix (no delete markers)."""
    backend = _s3(account, region)
    found = backend.list_objects(backend.get_bucket(bucket), prefix or None, None, None, None)
    return [(str(k.name), int(k.size), str(k.etag).strip('"')) for k in found[0]]


def object_and_etag(account: str, region: str, bucket: str, key: str) -> tuple[bytes, str] | None:
    """The object's bytes and ETag (moto keeps them in memory), None if it is gone."""
    try:
        found = _s3(account, region).get_object(bucket, key)
    except Exception:
        return None
    if found is None or not hasattr(found, "value"):
        return None
    return bytes(found.value), str(found.etag).strip('"')


def bucket_totals() -> tuple[int, int]:
    """(buckets, objects) in every account and partition: what a stop would lose."""
    buckets = objects_held = 0
    for _, per_partition in list(s3_backends.items()):
        for backend in list(per_partition.values()):
            for bucket in list(backend.buckets.values()):
                buckets += 1
                objects_held += len(list(bucket.keys.keys()))
    return buckets, objects_held


def list_keys(account: str, region: str, bucket: str, prefix: str = "") -> list[str]:
    """Every key under `prefix` (unpaginated: for tests and status)."""
    backend = _s3(account, region)
    found = backend.get_bucket(bucket)
    return sorted(k for k in list(found.keys.keys()) if k.startswith(prefix))


def all_buckets() -> list[tuple[str, Any]]:
    """("account/partition/bucket", FakeBucket) for every bucket everywhere."""
    return [
        (f"{account}/{partition}/{name}", bucket)
        for account, per_partition in list(s3_backends.items())
        for partition, backend in list(per_partition.items())
        for name, bucket in list(backend.buckets.items())
    ]


def bucket_id(backend: Any, bucket_name: str) -> str:
    return f"{backend.account_id}/{backend.partition}/{bucket_name}"


def key_bucket_id(key: Any) -> str | None:
    """The bucket id of a FakeKey, None for what is not an object (a delete marker)."""
    if not isinstance(key, FakeKey) or key.bucket_name is None:
        return None
    return f"{key.account_id}/{key.partition}/{key.bucket_name}"


def key_bytes(key: Any) -> bytes:
    return bytes(key.value)


def key_state(key: Any) -> dict[str, Any]:
    """A FakeKey's metadata without its bytes, buffer, lock or multipart parts."""
    skip = {"_value_buffer", "lock", "value"}
    state = {k: v for k, v in key.__dict__.items() if k not in skip}
    state["multipart"] = None  # its parts hold the bytes again
    return state


def key_from(state: dict[str, Any], data: bytes) -> Any:
    """A FakeKey back from `key_state` and its bytes (moto's own unpickling path)."""
    key = FakeKey.__new__(FakeKey)
    key.__setstate__({**state, "value": data})  # type: ignore[attr-defined]
    return key


def set_keys(bucket: Any, versions: list[tuple[str, Any]]) -> None:
    """Replace a bucket's keys with these (key, FakeKey) versions, oldest first."""
    fresh = _VersionedKeyStore()
    for name, key in versions:
        dict.setdefault(fresh, name, []).append(key)
    bucket.keys = fresh


class S3Unavailable(S3ClientError):
    """The object could not be stored (a full disk): an AWS-shaped ServiceUnavailable."""

    code = "ServiceUnavailable"


# -- Glue ----------------------------------------------------------------------------------
def glue_columns(account: str, region: str, database: str, table: str) -> list[tuple[str, str]]:
    """The table's data columns (name, Glue type) of its current version (VersionId LATEST).

    Raises moto's EntityNotFound/TableNotFound if the database or table is missing.
    """
    found = glue_backends[account][region].get_table(database, table)
    described = found.as_dict()
    columns = (described.get("StorageDescriptor") or {}).get("Columns") or []
    return [(str(c["Name"]), str(c["Type"])) for c in columns]
