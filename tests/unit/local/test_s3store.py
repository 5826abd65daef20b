"""S3 objects on disk (iotpipe.local.s3store) and moto's S3 wired to it (s3durable)."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from durable_patches import installed
from moto import mock_aws

from iotpipe.local import motointernals_lake as lake
from iotpipe.local import s3durable, s3store, snapshot
from iotpipe.local.s3store import BLOBS, DiskFull, S3Store

REGION = "us-east-1"
ACCOUNT = "123456789012"


def _blobs(where: Path) -> list[Path]:
    return sorted((where / BLOBS).glob("*/*"))


def test_objects_come_back_after_a_restart_and_deletes_free_their_bytes(tmp_path) -> None:
    store = S3Store()
    store.open(tmp_path)
    store.save("b", "k1", "null", b"same bytes", {"size": 10})
    store.save("b", "k2", "null", b"same bytes", {"size": 10})  # stored once
    store.save("b", "k3", "null", b"other", {"size": 5})
    assert len(_blobs(tmp_path)) == 2
    store.save("b", "k3", "null", b"overwritten", {"size": 11})
    store.close()
    again = S3Store()
    again.open(tmp_path)
    rows = again.load()["b"]
    assert [(n, again.read(d), s["size"]) for n, d, s in rows] == [
        ("k1", b"same bytes", 10),
        ("k2", b"same bytes", 10),
        ("k3", b"overwritten", 11),
    ]
    assert len(_blobs(tmp_path)) == 2  # "other" went with its overwrite
    again.forget("b", "k1")
    assert len(_blobs(tmp_path)) == 2  # k2 still names it
    again.forget_bucket("b")
    assert _blobs(tmp_path) == [] and again.count() == 0


def test_a_crash_between_blob_and_row_leaves_no_orphan_and_no_torn_object(tmp_path) -> None:
    live, crashed = tmp_path / "live", tmp_path / "crashed"
    live.mkdir()
    store = S3Store()
    store.open(live)
    store.save("b", "k", "null", b"acknowledged", {})
    shutil.copytree(live, crashed)  # as a kill -9 leaves it
    orphan = crashed / BLOBS / "ff" / ("f" * 64)
    orphan.parent.mkdir()
    orphan.write_bytes(b"a blob whose row never committed")
    (crashed / BLOBS / "ff" / ".tmp-half").write_bytes(b"torn")
    after = S3Store()
    after.open(crashed)
    assert not orphan.exists()
    [(name, digest, _)] = after.load()["b"]
    assert (name, after.read(digest)) == ("k", b"acknowledged")
    store.close()


def test_a_full_disk_records_nothing_of_that_object(tmp_path, monkeypatch) -> None:
    store = S3Store()
    store.open(tmp_path)
    store.save("b", "kept", "null", b"1", {})

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(s3store, "write_durably", full)
    with pytest.raises(DiskFull, match="disk is full"):
        store.save("b", "refused", "null", b"2", {})
    assert [n for n, _, _ in store.load()["b"]] == ["kept"]


# -- moto's S3 wired to the store ----------------------------------------------------------
@pytest.fixture
def s3(tmp_path: Path) -> Iterator[Any]:
    with installed(s3durable), mock_aws():
        s3durable.STORE.open(tmp_path)
        try:
            yield boto3.client("s3", region_name=REGION)
        finally:
            s3durable.STORE.close()


def _restart(tmp_path: Path) -> None:
    """The snapshot brings buckets with placeholder objects; the store brings the objects."""
    s3durable.STORE.close()
    for _, bucket in lake.all_buckets():
        lake.set_keys(bucket, [])
    s3durable.STORE.open(tmp_path)
    s3durable.restore()


def test_api_and_internal_puts_survive_with_their_metadata(s3, tmp_path) -> None:
    s3.create_bucket(Bucket="lake")
    s3.put_object(Bucket="lake", Key="a.json", Body=b'{"a": 1}', ContentType="application/json")
    lake.put_object(ACCOUNT, REGION, "lake", "data/part-0.parquet", b"PAR1" * 1000)
    s3.put_object(Bucket="lake", Key="gone", Body=b"x")
    s3.delete_object(Bucket="lake", Key="gone")
    s3.put_object(Bucket="lake", Key="a.json", Body=b'{"a": 2}', ContentType="application/json")
    etag = s3.head_object(Bucket="lake", Key="a.json")["ETag"]
    _restart(tmp_path)
    got = s3.get_object(Bucket="lake", Key="a.json")
    assert got["Body"].read() == b'{"a": 2}' and got["ETag"] == etag
    assert got["ContentType"] == "application/json"
    assert lake.get_object(ACCOUNT, REGION, "lake", "data/part-0.parquet") == b"PAR1" * 1000
    assert lake.list_keys(ACCOUNT, REGION, "lake") == ["a.json", "data/part-0.parquet"]
    s3.delete_objects(
        Bucket="lake", Delete={"Objects": [{"Key": "a.json"}, {"Key": "data/part-0.parquet"}]}
    )
    s3.delete_bucket(Bucket="lake")
    assert s3durable.STORE.count() == 0 and _blobs(tmp_path) == []


def test_a_put_on_a_full_disk_fails_and_is_not_in_the_bucket(s3, tmp_path, monkeypatch) -> None:
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="kept", Body=b"1")

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(s3store, "write_durably", full)
    with pytest.raises(ClientError, match="disk is full") as caught:
        s3.put_object(Bucket="bkt", Key="refused", Body=b"2")
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailable"
    monkeypatch.undo()
    assert lake.list_keys(ACCOUNT, REGION, "bkt") == ["kept"]
    _restart(tmp_path)
    assert lake.list_keys(ACCOUNT, REGION, "bkt") == ["kept"]


def test_the_control_snapshot_holds_no_object_bytes(s3) -> None:
    s3.create_bucket(Bucket="bkt")
    s3.put_object(Bucket="bkt", Key="k", Body=b"object-bytes-" * 100)
    assert b"object-bytes-" not in snapshot.dumps([b for _, b in lake.all_buckets()])
