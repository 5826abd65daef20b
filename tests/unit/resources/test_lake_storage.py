"""The lake bucket against moto in-process: created private, encrypted and expiring as the
config says, read back field by field, reconciled in place, emptied and deleted.

A bucket that "creates" the wrong thing, cannot see a loosened setting, leaves objects
behind or cannot be found without state fails one of these.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from resource_helpers import ACCOUNT, SUFFIX, make_ctx

from iotpipe.aws import Gateway
from iotpipe.config import Config, LakeConfig
from iotpipe.discover import find_suffixes
from iotpipe.resources.base import Context, diff
from iotpipe.resources.lakebucket import BLOCK_ALL, LakeBucket, bucket_health

pytestmark = pytest.mark.usefixtures("moto")

READS = ("Get", "List", "Head")


def lake_config(**lake: Any) -> Config:
    return Config(lake=LakeConfig(enabled=True, **lake), tags={"team": "iot"})


def calls(ctx: Context) -> list[str]:
    """Every S3 operation the context's client makes from now on, in order."""
    seen: list[str] = []
    s3 = ctx.client("s3")
    s3.meta.events.register("before-call", lambda model, **_: seen.append(model.name))
    return seen


def mutating(seen: list[str]) -> list[str]:
    return [c for c in seen if not c.startswith(READS)]


def rules(ctx: Context) -> dict[str, dict[str, Any]]:
    found = ctx.client("s3").get_bucket_lifecycle_configuration(Bucket=ctx.names.bucket)
    return {r["ID"]: r for r in found["Rules"]}


def test_create_makes_a_private_encrypted_expiring_tagged_bucket() -> None:
    ctx = make_ctx(lake_config(retention_days=30))
    bucket = LakeBucket(ctx)
    assert bucket.name == f"iot-telemetry-{SUFFIX}-{ACCOUNT}-us-east-1"
    assert bucket.describe() is None
    out = bucket.create()
    assert out["name"] == bucket.name and out["arn"] == f"arn:aws:s3:::{bucket.name}"
    assert out == bucket.outputs()

    s3 = ctx.client("s3")
    block = s3.get_public_access_block(Bucket=bucket.name)["PublicAccessBlockConfiguration"]
    assert block == BLOCK_ALL
    owner = s3.get_bucket_ownership_controls(Bucket=bucket.name)["OwnershipControls"]
    assert owner["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    sse = s3.get_bucket_encryption(Bucket=bucket.name)["ServerSideEncryptionConfiguration"]
    assert sse["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    found = rules(ctx)
    assert found["expire-data"]["Filter"] == {"Prefix": "data/"}
    assert found["expire-data"]["Expiration"] == {"Days": 30}
    assert found["expire-errors"]["Filter"] == {"Prefix": "errors/"}
    assert found["expire-errors"]["Expiration"] == {"Days": 30}
    assert found["expire-athena-results"]["Expiration"] == {"Days": 7}
    abort = found["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"]
    assert abort == {"DaysAfterInitiation": 7}
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket.name)["TagSet"]}
    assert tags == {"team": "iot", "iotpipe:deployment": f"iot-telemetry-{SUFFIX}"}

    assert diff(bucket.desired(), bucket.describe() or {}) == {}


def test_results_expire_after_the_retention_when_it_is_shorter_than_a_week() -> None:
    ctx = make_ctx(lake_config(retention_days=3))
    LakeBucket(ctx).create()
    assert rules(ctx)["expire-athena-results"]["Expiration"] == {"Days": 3}
    assert LakeBucket(ctx).describe()["results_retention_days"] == 3  # type: ignore[index]


def test_an_unchanged_rerun_reads_only_and_a_second_create_is_harmless() -> None:
    ctx = make_ctx(lake_config())
    bucket = LakeBucket(ctx)
    bucket.create()
    seen = calls(ctx)
    assert diff(bucket.desired(), bucket.describe() or {}) == {}
    assert seen and mutating(seen) == []
    bucket.create()  # `up` interrupted after CreateBucket: create runs again
    assert "CreateBucket" in seen
    assert diff(bucket.desired(), bucket.describe() or {}) == {}


def test_a_loosened_bucket_shows_field_diffs_and_update_reputs_only_those() -> None:
    ctx = make_ctx(lake_config(retention_days=30))
    bucket = LakeBucket(ctx)
    bucket.create()
    s3 = ctx.client("s3")
    s3.delete_public_access_block(Bucket=bucket.name)
    s3.delete_bucket_tagging(Bucket=bucket.name)
    changed = LakeBucket(make_ctx(lake_config(retention_days=90), gateway=ctx.gateway))
    current = changed.describe()
    assert current is not None
    changes = diff(changed.desired(), current)
    assert changes == {
        "public_access_block": (None, BLOCK_ALL),
        "retention_days": (30, 90),
        "errors_retention_days": (30, 90),
        "tags": ({}, changed.desired()["tags"]),
    }
    seen = calls(ctx)
    changed.update(current, changes)
    assert mutating(seen) == [
        "PutPublicAccessBlock",
        "PutBucketLifecycleConfiguration",
        "PutBucketTagging",
    ]
    assert diff(changed.desired(), changed.describe() or {}) == {}
    assert rules(ctx)["expire-data"]["Expiration"] == {"Days": 90}


def test_a_lifecycle_rule_moved_to_another_prefix_no_longer_counts() -> None:
    ctx = make_ctx(lake_config())
    bucket = LakeBucket(ctx)
    bucket.create()
    moved = list(rules(ctx).values())
    for rule in moved:
        if rule["ID"] == "expire-data":
            rule["Filter"] = {"Prefix": "elsewhere/"}
    ctx.client("s3").put_bucket_lifecycle_configuration(
        Bucket=bucket.name, LifecycleConfiguration={"Rules": moved}
    )
    assert diff(bucket.desired(), bucket.describe() or {}) == {"retention_days": (None, 365)}


def test_outside_us_east_1_the_bucket_is_made_in_its_region() -> None:
    cfg = dataclasses.replace(lake_config(), region="eu-west-1")
    ctx = make_ctx(cfg, gateway=Gateway(region="eu-west-1", local=True))
    bucket = LakeBucket(ctx)
    assert bucket.name.endswith(f"-{ACCOUNT}-eu-west-1")
    bucket.create()
    where = ctx.client("s3").get_bucket_location(Bucket=bucket.name)["LocationConstraint"]
    assert where == "eu-west-1"
    bucket.create()  # outside us-east-1 S3 says BucketAlreadyOwnedByYou: tolerated
    assert diff(bucket.desired(), bucket.describe() or {}) == {}


def put_objects(ctx: Context, count: int, versions: int = 1) -> int:
    """``count`` keys with ``versions`` versions each; returns the bytes written."""
    s3, written = ctx.client("s3"), 0
    for i in range(count):
        for v in range(versions):
            body = f"row {i} v{v}".encode()
            s3.put_object(Bucket=ctx.names.bucket, Key=f"data/dt=2026-12-02/hour=07/{i}", Body=body)
            written += len(body)
    return written


def test_contents_counts_objects_and_bytes_and_none_without_a_bucket() -> None:
    ctx = make_ctx(lake_config())
    bucket = LakeBucket(ctx)
    assert bucket.contents() is None
    bucket.create()
    assert bucket.contents() == (0, 0)
    written = put_objects(ctx, 3)
    assert bucket.contents() == (3, written)


def test_delete_empties_every_version_and_delete_marker_then_deletes() -> None:
    ctx = make_ctx(lake_config())
    bucket = LakeBucket(ctx)
    bucket.create()
    s3 = ctx.client("s3")
    first = put_objects(ctx, 2)  # unversioned objects: version "null"
    s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
    then = put_objects(ctx, 3, versions=2)  # the null versions stay, as noncurrent ones
    s3.delete_object(Bucket=bucket.name, Key="data/dt=2026-12-02/hour=07/0")  # a marker
    listed = s3.list_object_versions(Bucket=bucket.name)
    assert len(listed["DeleteMarkers"]) == 1
    assert {v["VersionId"] for v in listed["Versions"]} >= {"null"}
    assert bucket.contents() == (2 + 3 * 2, first + then)  # markers hold no data

    assert bucket.delete() is True
    assert bucket.describe() is None
    assert bucket.contents() is None
    assert bucket.delete() is False  # NoSuchBucket = already gone


def test_delete_batches_at_most_a_thousand_keys_per_call() -> None:
    ctx = make_ctx(lake_config())
    bucket = LakeBucket(ctx)
    bucket.create()
    s3 = ctx.client("s3")
    for i in range(1001):
        s3.put_object(Bucket=bucket.name, Key=f"errors/{i}", Body=b"x")
    assert bucket.contents() == (1001, 1001)  # read over two pages
    sizes: list[int] = []
    s3.meta.events.register(
        "before-parameter-build.s3.DeleteObjects",
        lambda params, **_: sizes.append(len(params["Delete"]["Objects"])),
    )
    assert bucket.empty() == 1001
    assert sorted(sizes) == [1, 1000]
    assert bucket.contents() == (0, 0)


def test_discovery_finds_the_bucket_by_its_suffix_despite_the_account_region_tail() -> None:
    ctx = make_ctx(lake_config())
    LakeBucket(ctx).create()
    # Neighbours that must not match: another deployment's name, another region's bucket.
    ctx.client("s3").create_bucket(Bucket=f"iot-telemetry-other-xyz987-{ACCOUNT}-us-east-1")
    ctx.client("s3").create_bucket(Bucket=f"iot-telemetry-zzz999-{ACCOUNT}-us-east-2x")
    ident = ctx.gateway.identity()
    assert find_suffixes(ctx.config, ctx.gateway, ident, kinds=[LakeBucket]) == [SUFFIX]


def test_health_passes_when_private_and_fails_when_public_access_is_allowed() -> None:
    ctx = make_ctx(lake_config())
    LakeBucket(ctx).create()
    assert bucket_health(ctx).ok is True
    ctx.client("s3").delete_public_access_block(Bucket=ctx.names.bucket)
    check = bucket_health(ctx)
    assert check.ok is False and "NOT fully blocked" in check.detail and check.fix


def test_enabled_follows_the_lake_switch() -> None:
    assert LakeBucket(make_ctx(lake_config())).enabled() is True
    assert LakeBucket(make_ctx(Config())).enabled() is False
