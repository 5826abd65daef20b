"""What moto cannot show for the lake's storage kinds: races, refusals and AWS's own words.

Each test scripts AWS's answers with botocore's Stubber and asserts on what the kind did
with them; the ``stubbed`` fixture fails a test that leaves a scripted answer unused.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber
from resource_helpers import FakeClock, Stubbed, add_error, make_ctx

from iotpipe.config import Config, LakeConfig
from iotpipe.resources.base import Context, diff
from iotpipe.resources.catalog import LakeCatalog
from iotpipe.resources.errors import ResourceStateError
from iotpipe.resources.lakebucket import LakeBucket
from iotpipe.resources.workgroup import ENGINE, Workgroup

LAKE = Config(lake=LakeConfig(enabled=True))


def ctx_for(stubbed: Stubbed, clock: FakeClock, config: Config = LAKE) -> Context:
    return make_ctx(config, gateway=stubbed.gateway, clock=clock)


@pytest.fixture
def ctx(stubbed: Stubbed, clock: FakeClock) -> Context:
    """The lake-enabled deployment over the stubbed gateway (clients are looked up lazily,
    so a service stubbed after this is the one the kind talks to)."""
    return ctx_for(stubbed, clock)


@pytest.fixture
def s3(stubbed: Stubbed) -> Stubber:
    return stubbed.stub("s3")


@pytest.fixture
def athena(stubbed: Stubbed) -> Stubber:
    return stubbed.stub("athena")


def listing(s3: Stubber, bucket: str, *keys: str) -> None:
    """One ListObjectVersions answer (as ``empty`` asks for it) holding ``keys``."""
    versions = [{"Key": k, "VersionId": f"v-{k}", "Size": 3} for k in keys]
    s3.add_response(
        "list_object_versions",
        {"Versions": versions, "IsTruncated": False},
        {"Bucket": bucket, "MaxKeys": 1000},
    )


def deletes(s3: Stubber, bucket: str, *keys: str) -> None:
    objects = [{"Key": k, "VersionId": f"v-{k}"} for k in keys]
    s3.add_response(
        "delete_objects",
        {"Deleted": objects},
        {"Bucket": bucket, "Delete": {"Objects": objects, "Quiet": True}},
    )


# --- the bucket ----------------------------------------------------------------------------
def test_bucket_not_empty_after_emptying_empties_once_more_then_deletes(
    ctx: Context, s3: Stubber
) -> None:
    """Firehose flushed a buffer between the emptying and DeleteBucket."""
    bucket = ctx.names.bucket
    listing(s3, bucket, "data/a")
    deletes(s3, bucket, "data/a")
    listing(s3, bucket)
    add_error(
        s3, "delete_bucket", "BucketNotEmpty", "The bucket you tried to delete is not empty", 409
    )
    listing(s3, bucket, "data/late")
    deletes(s3, bucket, "data/late")
    listing(s3, bucket)
    s3.add_response("delete_bucket", {}, {"Bucket": bucket})
    add_error(s3, "head_bucket", "404", "Not Found", 404)  # the bucket_not_exists waiter
    assert LakeBucket(ctx).delete() is True


def test_bucket_still_not_empty_the_second_time_is_an_error_not_a_loop(
    ctx: Context, s3: Stubber
) -> None:
    bucket = ctx.names.bucket
    listing(s3, bucket)
    add_error(s3, "delete_bucket", "BucketNotEmpty", "not empty", 409)
    listing(s3, bucket)
    add_error(s3, "delete_bucket", "BucketNotEmpty", "not empty", 409)
    with pytest.raises(ClientError, match="BucketNotEmpty"):
        LakeBucket(ctx).delete()


def test_access_denied_surfaces_from_describe_delete_and_contents(
    ctx: Context, s3: Stubber
) -> None:
    """AccessDenied is not "no bucket": down must not report a bucket it could not read."""
    add_error(s3, "get_bucket_location", "AccessDenied", "Access Denied", 403)
    add_error(s3, "list_object_versions", "AccessDenied", "Access Denied", 403)
    add_error(s3, "list_object_versions", "AccessDenied", "Access Denied", 403)
    res = LakeBucket(ctx)
    with pytest.raises(ClientError, match="AccessDenied"):
        res.describe()
    with pytest.raises(ClientError, match="AccessDenied"):
        res.delete()
    with pytest.raises(ClientError, match="AccessDenied"):
        res.contents()


def test_keys_s3_refuses_to_delete_stop_the_emptying_with_a_sentence(
    ctx: Context, s3: Stubber
) -> None:
    bucket = ctx.names.bucket
    listing(s3, bucket, "data/a")
    refused = {"Key": "data/a", "Code": "AccessDenied", "Message": "Access Denied"}
    s3.add_response("delete_objects", {"Errors": [refused]}, {"Bucket": bucket, "Delete": ANY})
    with pytest.raises(
        ResourceStateError, match=r"1 object\(s\) refused, e.g. data/a: AccessDenied"
    ):
        LakeBucket(ctx).delete()


def test_a_bucket_name_taken_by_another_account_is_explained(ctx: Context, s3: Stubber) -> None:
    add_error(
        s3,
        "create_bucket",
        "BucketAlreadyExists",
        "The requested bucket name is not available",
        409,
    )
    with pytest.raises(ResourceStateError, match="belongs to another account"):
        LakeBucket(ctx).create()


def test_create_outside_us_east_1_states_the_location_constraint_then_protects(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    """The whole create, in order: the bucket, its waiter, then each protection."""
    ctx = ctx_for(stubbed, clock, Config(region="eu-central-1", lake=LakeConfig(enabled=True)))
    bucket = ctx.names.bucket
    s3 = stubbed.stub("s3")
    where = {"LocationConstraint": "eu-central-1"}
    s3.add_response("create_bucket", {}, {"Bucket": bucket, "CreateBucketConfiguration": where})
    ok = {"ResponseMetadata": {"HTTPStatusCode": 200}}  # what the waiter matches on
    s3.add_response("head_bucket", ok, {"Bucket": bucket})
    for put in (
        "put_public_access_block",
        "put_bucket_ownership_controls",
        "put_bucket_encryption",
        "put_bucket_lifecycle_configuration",
        "put_bucket_tagging",
    ):
        s3.add_response(put, {}, None)
    assert LakeBucket(ctx).create()["name"] == bucket
    assert bucket.endswith("-eu-central-1")


# --- the catalog ---------------------------------------------------------------------------
def test_glue_access_denied_is_an_error_and_not_found(ctx: Context, stubbed: Stubbed) -> None:
    glue = stubbed.stub("glue")
    add_error(glue, "get_database", "AccessDeniedException", "not authorized", 400)
    with pytest.raises(ClientError, match="AccessDeniedException"):
        LakeCatalog(ctx).describe()


# --- the workgroup -------------------------------------------------------------------------
WG_GONE = "WorkGroup iot-telemetry-athena-abc123 is not found."


def test_aws_not_found_for_a_workgroup_is_absent_and_already_deleted(
    ctx: Context, athena: Stubber
) -> None:
    add_error(athena, "get_work_group", "InvalidRequestException", WG_GONE)
    add_error(athena, "get_work_group", "InvalidRequestException", WG_GONE)
    wg = Workgroup(ctx)
    assert wg.describe() is None
    assert wg.delete() is False


def test_a_workgroup_deleted_between_the_read_and_the_delete_is_gone(
    ctx: Context, athena: Stubber
) -> None:
    athena.add_response("get_work_group", {"WorkGroup": {"Name": ctx.names.workgroup}})
    add_error(athena, "delete_work_group", "InvalidRequestException", WG_GONE)
    assert Workgroup(ctx).delete() is False


def test_other_invalid_requests_are_errors(ctx: Context, athena: Stubber) -> None:
    add_error(athena, "get_work_group", "InvalidRequestException", "WorkGroup name is invalid")
    with pytest.raises(ClientError, match="invalid"):
        Workgroup(ctx).describe()


def test_update_sends_only_the_changed_settings(stubbed: Stubbed, clock: FakeClock) -> None:
    """moto has no UpdateWorkGroup; AWS's request shape is checked here."""
    ctx = ctx_for(stubbed, clock, Config(lake=LakeConfig(enabled=True, scan_limit_gb=2)))
    wg = Workgroup(ctx)
    current = {**wg.desired(), "bytes_scanned_cutoff": 10 * 1024**3, "enforce_configuration": False}
    changes = diff(wg.desired(), current)
    athena = stubbed.stub("athena")
    athena.add_response(
        "update_work_group",
        {},
        {
            "WorkGroup": wg.name,
            "ConfigurationUpdates": {
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": 2 * 1024**3,
            },
        },
    )
    assert wg.update(current, changes) == wg.outputs()


def test_a_moved_results_location_is_put_back_with_its_encryption(
    ctx: Context, athena: Stubber
) -> None:
    wg = Workgroup(ctx)
    current = {**wg.desired(), "output_location": "s3://elsewhere/"}
    athena.add_response(
        "update_work_group",
        {},
        {
            "WorkGroup": wg.name,
            "ConfigurationUpdates": {
                "ResultConfigurationUpdates": {
                    "OutputLocation": f"s3://{ctx.names.bucket}/athena-results/",
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
                }
            },
        },
    )
    assert wg.update(current, diff(wg.desired(), current)) == wg.outputs()
    athena.assert_no_pending_responses()  # the one UpdateWorkGroup, with exactly that body


def test_create_of_an_existing_workgroup_reconciles_what_differs(
    ctx: Context, athena: Stubber
) -> None:
    """A repeated `up` after CreateWorkGroup: AWS says "already created"; only the
    setting that differs is updated (here a cutoff someone changed by hand)."""
    wg = Workgroup(ctx)
    want = wg.desired()
    add_error(
        athena, "create_work_group", "InvalidRequestException", "WorkGroup is already created"
    )
    config = {
        "ResultConfiguration": {
            "OutputLocation": want["output_location"],
            "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
        },
        "EnforceWorkGroupConfiguration": True,
        "BytesScannedCutoffPerQuery": 10_000_000,
        "PublishCloudWatchMetricsEnabled": True,
        "EngineVersion": {"SelectedEngineVersion": ENGINE},
    }
    found = {"Name": wg.name, "State": "ENABLED", "Configuration": config}
    athena.add_response("get_work_group", {"WorkGroup": found}, {"WorkGroup": wg.name})
    tags = [{"Key": k, "Value": v} for k, v in sorted(want["tags"].items())]
    athena.add_response("list_tags_for_resource", {"Tags": tags}, {"ResourceARN": wg.arn})
    cutoff = {"BytesScannedCutoffPerQuery": want["bytes_scanned_cutoff"]}
    athena.add_response(
        "update_work_group", {}, {"WorkGroup": wg.name, "ConfigurationUpdates": cutoff}
    )
    assert wg.create() == wg.outputs()
