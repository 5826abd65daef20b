"""What moto cannot show for the lake's flow side: a Firehose role not yet assumable,
a stream that fails to create, a stream still CREATING when ``down`` comes, and the
store check before any change (an account Timestream LiveAnalytics refuses).

Each test scripts AWS's answers with botocore's Stubber on real clients; time is a
FakeClock, so retries and polls are asserted, not waited for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY
from fake_clock import FakeClock
from lake_contract import delivery_request
from resource_helpers import ACCOUNT, REGION, SUFFIX, Stubbed, add_error

from iotpipe.cli.app import EXIT_USAGE, run_guarded
from iotpipe.config import Config, LakeConfig, LegacyConfig, TimestreamConfig
from iotpipe.engine import Engine
from iotpipe.errors import UsageError
from iotpipe.naming import Names
from iotpipe.resources.base import Context
from iotpipe.resources.delivery import AWS_POLL_S, DeliveryStream
from iotpipe.resources.errors import ResourceStateError
from iotpipe.resources.timeseries import Timestream
from iotpipe.state import State
from iotpipe.storecheck import StoreUnavailableError, check_timestream
from iotpipe.target import Deployment

LAKE = Config(lake=LakeConfig(enabled=True))
LAKE_ONLY = Config(lake=LakeConfig(enabled=True), timestream=TimestreamConfig(enabled=False))
ROLE = f"arn:aws:iam::{ACCOUNT}:role/iot-telemetry-firehose-role-us-east-1-{SUFFIX}"
NOT_ASSUMABLE = f"Firehose is unable to assume role {ROLE}. Please check the role provided."
CLOSED = "Only existing Timestream for LiveAnalytics customers can access the service."
INVALID = "InvalidArgumentException"


def context(stubbed: Stubbed, clock: FakeClock, config: Config = LAKE) -> Context:
    names = Names.of(config, SUFFIX, ACCOUNT)
    return Context(config, names, stubbed.gateway, sleep=clock.sleep, clock=clock.now)


def description(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "DeliveryStreamDescription": {
            "DeliveryStreamName": f"iot-telemetry-lake-{SUFFIX}",
            "DeliveryStreamARN": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/x",
            "DeliveryStreamStatus": status,
            "DeliveryStreamType": "KinesisStreamAsSource",
            "VersionId": "1",
            "Destinations": [],
            "HasMoreDestinations": False,
            **extra,
        }
    }


def contract_request(names: Names) -> dict[str, Any]:
    """notes/lake-contract.md's request for this deployment, tags included."""
    request = delivery_request(
        name=names.delivery_stream,
        stream_arn=names.stream_arn,
        role=ROLE,
        bucket_arn=names.bucket_arn,
        function_arn=names.transform_function_arn,
        database=f"iot_telemetry_lake_{SUFFIX}",
        region=REGION,
    )
    return {**request, "Tags": [{"Key": "iotpipe:deployment", "Value": names.deployment}]}


# --- the delivery stream ----------------------------------------------------------------


def test_a_role_not_yet_assumable_is_retried_then_creating_is_polled_until_active(
    stubbed: Stubbed,
) -> None:
    clock = FakeClock()
    ctx = context(stubbed, clock)
    fh = stubbed.stub("firehose")
    add_error(fh, "create_delivery_stream", INVALID, NOT_ASSUMABLE)
    fh.add_response(
        "create_delivery_stream", {"DeliveryStreamARN": "arn"}, contract_request(ctx.names)
    )
    fh.add_response("describe_delivery_stream", description("CREATING"))
    fh.add_response("describe_delivery_stream", description("ACTIVE"))
    out = DeliveryStream(ctx).create()
    assert out["arn"] == ctx.names.delivery_stream_arn
    retry, poll = clock.pauses
    assert 0.5 <= retry <= 1.0  # the IAM backoff's first, jittered step
    assert poll == AWS_POLL_S  # AWS pacing, not the embedded AWS's


def test_other_invalid_arguments_are_not_retried(stubbed: Stubbed) -> None:
    clock = FakeClock()
    fh = stubbed.stub("firehose")
    too_small = (
        "BufferingHints.SizeInMBs must be at least 64 when data format conversion is enabled"
    )
    add_error(fh, "create_delivery_stream", INVALID, too_small)
    with pytest.raises(ClientError, match="at least 64"):
        DeliveryStream(context(stubbed, clock)).create()
    assert clock.pauses == []


def test_creating_failed_says_why_and_that_up_replaces_it(stubbed: Stubbed) -> None:
    clock = FakeClock()
    fh = stubbed.stub("firehose")
    fh.add_response("create_delivery_stream", {"DeliveryStreamARN": "arn"})
    fh.add_response("describe_delivery_stream", description("CREATING"))
    why = {"Type": "INVALID_CONFIGURATION", "Details": "Glue table telemetry not found."}
    fh.add_response(
        "describe_delivery_stream", description("CREATING_FAILED", FailureDescription=why)
    )
    with pytest.raises(ResourceStateError) as info:
        DeliveryStream(context(stubbed, clock)).create()
    text = str(info.value)
    assert "CREATING_FAILED" in text and "Glue table telemetry not found." in text
    assert "replaces" in text


def test_a_failed_stream_plans_as_a_replacement(stubbed: Stubbed) -> None:
    clock = FakeClock()
    fh = stubbed.stub("firehose")
    fh.add_response("describe_delivery_stream", description("CREATING_FAILED"))
    stream = DeliveryStream(context(stubbed, clock))
    current = stream.describe()
    assert current is not None and current["failed"] is True
    assert stream.recreates({"failed": (True, False)})


def test_creating_too_long_times_out_with_the_state(stubbed: Stubbed) -> None:
    clock = FakeClock()
    fh = stubbed.stub("firehose")
    fh.add_response("create_delivery_stream", {"DeliveryStreamARN": "arn"})
    for _ in range(61):
        fh.add_response("describe_delivery_stream", description("CREATING"))
    with pytest.raises(ResourceStateError, match="still CREATING after 300 s"):
        DeliveryStream(context(stubbed, clock)).create()
    assert sum(clock.pauses) <= 300


def test_delete_waits_out_creating_then_polls_until_gone(stubbed: Stubbed) -> None:
    clock = FakeClock()
    fh = stubbed.stub("firehose")
    add_error(fh, "delete_delivery_stream", "ResourceInUseException", "is in CREATING state")
    fh.add_response("delete_delivery_stream", {})
    fh.add_response("describe_delivery_stream", description("DELETING"))
    add_error(fh, "describe_delivery_stream", "ResourceNotFoundException", status=404)
    assert DeliveryStream(context(stubbed, clock)).delete() is True
    assert clock.pauses == [AWS_POLL_S, AWS_POLL_S]


def test_delete_of_a_missing_stream_is_done(stubbed: Stubbed) -> None:
    fh = stubbed.stub("firehose")
    add_error(fh, "delete_delivery_stream", "ResourceNotFoundException", status=404)
    assert DeliveryStream(context(stubbed, FakeClock())).delete() is False


def test_update_sends_the_version_and_destination_it_described(stubbed: Stubbed) -> None:
    clock = FakeClock()
    ctx = context(stubbed, clock)
    fh = stubbed.stub("firehose")
    expected = {
        "DeliveryStreamName": ctx.names.delivery_stream,
        "CurrentDeliveryStreamVersionId": "7",
        "DestinationId": "destinationId-000000000001",
        "ExtendedS3DestinationUpdate": ANY,
    }
    fh.add_response("update_destination", {}, expected)
    fh.add_response("describe_delivery_stream", description("ACTIVE"))
    current = {"version_id": "7", "destination_id": "destinationId-000000000001"}
    DeliveryStream(ctx).update(current, {"buffer_s": (60, 120)})


# --- the store check --------------------------------------------------------------------


def timestream(stubbed: Stubbed) -> Any:
    # An explicit endpoint turns off Timestream's endpoint discovery (no DescribeEndpoints).
    return stubbed.stub(
        "timestream-write", endpoint_url="https://ingest.timestream.us-east-1.amazonaws.com"
    )


def deployment(stubbed: Stubbed, tmp_path: Path, config: Config) -> Deployment:
    names = Names.of(config, SUFFIX, ACCOUNT)
    return Deployment(config, stubbed.gateway, names, State(tmp_path / "state.json"))


def no_other_calls(stubbed: Stubbed) -> list[str]:
    """Any client the gateway builds from now on records its calls (none are stubbed)."""
    calls: list[str] = []

    def hook(client: Any) -> None:
        def refuse(model: Any, **_: Any) -> None:
            calls.append(model.name)
            raise AssertionError(f"unexpected call {model.name}")

        client.meta.events.register("before-call.*.*", refuse)

    stubbed.gateway.hooks.append(hook)
    return calls


def test_a_closed_account_stops_up_before_any_change_with_exit_2(
    stubbed: Stubbed, tmp_path: Path
) -> None:
    calls = no_other_calls(stubbed)
    ts = timestream(stubbed)
    add_error(ts, "list_databases", "AccessDeniedException", CLOSED)
    engine = Engine(deployment(stubbed, tmp_path, Config()))
    with pytest.raises(SystemExit) as info:
        run_guarded(None, engine.apply)
    assert info.value.code == EXIT_USAGE
    assert calls == []
    assert not (tmp_path / "state.json").exists()


def test_the_refusal_says_what_to_set(stubbed: Stubbed) -> None:
    ts = timestream(stubbed)
    add_error(ts, "list_databases", "AccessDeniedException", CLOSED)
    ctx = context(stubbed, FakeClock(), Config())
    with pytest.raises(StoreUnavailableError) as info:
        check_timestream(ctx, [Timestream(ctx)])
    text = str(info.value)
    assert isinstance(info.value, UsageError)
    assert "`timestream.enabled: false`" in text and "`lake.enabled: true`" in text
    assert "Nothing was changed" in text and "Only existing" in text


def test_an_account_with_timestream_goes_on(stubbed: Stubbed) -> None:
    ts = timestream(stubbed)
    ts.add_response("list_databases", {"Databases": []}, {"MaxResults": 1})
    ctx = context(stubbed, FakeClock(), Config())
    check_timestream(ctx, [Timestream(ctx)])


def test_a_missing_permission_is_not_taken_for_a_closed_account(stubbed: Stubbed) -> None:
    ts = timestream(stubbed)
    denied = "User: arn:aws:iam::123456789012:user/u is not authorized to perform: ListDatabases"
    add_error(ts, "list_databases", "AccessDeniedException", denied)
    ctx = context(stubbed, FakeClock(), Config())
    check_timestream(ctx, [Timestream(ctx)])  # left to the Timestream step to report


@pytest.mark.parametrize(
    ("config", "local"),
    [(LAKE_ONLY, False), (Config(), True)],
    ids=["timestream-off", "embedded-aws"],
)
def test_no_check_without_timestream_or_on_the_embedded_aws(
    stubbed: Stubbed, config: Config, local: bool
) -> None:
    timestream(stubbed)  # nothing scripted: any call fails the test
    stubbed.gateway.local = local
    ctx = context(stubbed, FakeClock(), config)
    check_timestream(ctx, [Timestream(ctx)])


def test_the_legacy_refusal_still_comes_first_and_names_the_lake(
    stubbed: Stubbed, tmp_path: Path
) -> None:
    timestream(stubbed)  # not reached
    cfg = Config(legacy=LegacyConfig(enabled=True))
    with pytest.raises(UsageError) as info:
        Engine(deployment(stubbed, tmp_path, cfg)).plan()
    text = str(info.value)
    assert "`lake.enabled: true`" in text
    for replacement in ("Kinesis stream", "Firehose", "transform Lambda", "Parquet", "Glue"):
        assert replacement in text, replacement
    assert "Athena" in text


def test_with_timestream_off_a_closed_service_reads_as_nothing_to_delete(
    stubbed: Stubbed,
) -> None:
    ts = timestream(stubbed)
    for method in ("describe_database", "list_tables", "describe_database"):
        add_error(ts, method, "AccessDeniedException", CLOSED)
    res = Timestream(context(stubbed, FakeClock(), LAKE_ONLY))
    assert res.describe() is None
    assert res.strays() == []
    assert res.delete() is False
