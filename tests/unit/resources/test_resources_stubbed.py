"""What moto cannot show: IAM propagation retries, odd AWS answers, closed services.

Each test scripts the exact AWS responses with botocore's Stubber on real clients, and
asserts on what the resource did with them (calls made, delays slept, errors raised).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.exceptions import ClientError
from resource_helpers import ACCOUNT, FakeClock, Stubbed, add_error, make_ctx

from iotpipe.config import Config, EventSourceConfig
from iotpipe.resources.base import Context, Resource
from iotpipe.resources.errors import TIMESTREAM_CLOSED, ResourceStateError, ServiceUnavailableError
from iotpipe.resources.function import Function
from iotpipe.resources.logs import LogGroup
from iotpipe.resources.mapping import EventSourceMapping
from iotpipe.resources.queue import FailureQueue
from iotpipe.resources.roles import FunctionRole, RuleRole
from iotpipe.resources.rule import TopicRule
from iotpipe.resources.stream import Stream
from iotpipe.resources.timeseries import Timestream

INVALID = "InvalidParameterValueException"
QUEUE_URL = f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/iot-telemetry-failures-abc123"
ROLE_NOT_ASSUMABLE = "The role defined for the function cannot be assumed by Lambda."
CANNOT_ACCESS_STREAM = (
    "Cannot access stream arn:aws:kinesis:us-east-1:123456789012:stream/s. Please ensure the "
    "role can perform the GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions "
    "on your stream in IAM."
)
IOT_CANNOT_ASSUME = (
    "AWS IoT (iot.amazonaws.com) is unable to assume role (sts:AssumeRole) on resource: "
    "arn:aws:iam::123456789012:role/r. If the role was just created or updated, please try "
    "again in a few seconds."
)

# Shaped like real ones: newer botocore models require 36 characters.
UUID_1, UUID_2, UUID_3 = (f"1a2b3c4d-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))


def ctx_for(stubbed: Stubbed, clock: FakeClock, config: Config | None = None) -> Context:
    ctx = make_ctx(config, gateway=stubbed.gateway, clock=clock)
    ctx.outputs["queue"] = {"url": QUEUE_URL}  # as the engine records after the queue step
    return ctx


def assert_backoff(sleeps: list[float], count: int) -> None:
    """Exponential backoff with jitter: attempt n sleeps within [2^n / 2, 2^n] seconds."""
    assert len(sleeps) == count
    for n, delay in enumerate(sleeps):
        assert 2**n / 2 <= delay <= 2**n


# --- IAM propagation retries ------------------------------------------------------------------


def test_create_function_retries_until_the_role_is_assumable(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    lam = stubbed.stub("lambda")
    for _ in range(2):
        add_error(lam, "create_function", "InvalidParameterValueException", ROLE_NOT_ASSUMABLE)
    lam.add_response("create_function", {"FunctionName": "f", "CodeSha256": "sha"})
    lam.add_response("get_function", {"Configuration": {"State": "Active"}})
    out = Function(ctx_for(stubbed, clock)).create()
    assert out["code_sha256"] == "sha"
    assert_backoff(clock.sleeps, 2)


def test_other_invalid_parameter_errors_are_not_retried(stubbed: Stubbed, clock: FakeClock) -> None:
    lam = stubbed.stub("lambda")
    add_error(
        lam,
        "create_function",
        "InvalidParameterValueException",
        "The runtime parameter of python2.7 is no longer supported for creating functions.",
    )
    with pytest.raises(ClientError, match=r"python2\.7"):
        Function(ctx_for(stubbed, clock)).create()
    assert clock.sleeps == []


def test_role_retries_give_up_after_the_propagation_window(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    lam = stubbed.stub("lambda")
    for _ in range(40):
        add_error(lam, "create_function", "InvalidParameterValueException", ROLE_NOT_ASSUMABLE)
    with pytest.raises(ClientError, match="cannot be assumed"):
        Function(ctx_for(stubbed, clock)).create()
    assert 60 < sum(clock.sleeps) <= 120
    # The unused scripted errors are the point: drop this stubber from the fixture's check.
    stubbed.stubbers.pop("lambda").deactivate()


def test_create_mapping_retries_cannot_access_stream_then_waits_for_enabled(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    lam = stubbed.stub("lambda")
    for _ in range(2):
        add_error(
            lam,
            "create_event_source_mapping",
            "InvalidParameterValueException",
            CANNOT_ACCESS_STREAM,
        )
    lam.add_response("create_event_source_mapping", {"UUID": UUID_1, "State": "Creating"})
    lam.add_response("get_event_source_mapping", {"UUID": UUID_1, "State": "Creating"})
    lam.add_response("get_event_source_mapping", {"UUID": UUID_1, "State": "Enabled"})
    ctx = ctx_for(stubbed, clock)
    assert EventSourceMapping(ctx).create()["uuid"] == UUID_1
    assert_backoff(clock.sleeps[:2], 2)
    assert clock.sleeps[2:] == [2.0]  # one poll interval while Creating


def test_mapping_sent_with_bounded_retries_and_on_failure(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    ctx = ctx_for(stubbed, clock)
    names = ctx.names
    lam = stubbed.stub("lambda")
    expected = {
        "EventSourceArn": names.stream_arn,
        "FunctionName": names.function,
        "StartingPosition": "TRIM_HORIZON",
        "Enabled": True,
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 5,
        "ParallelizationFactor": 1,
        "MaximumRetryAttempts": 5,
        "MaximumRecordAgeInSeconds": 3600,
        "BisectBatchOnFunctionError": True,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "DestinationConfig": {"OnFailure": {"Destination": names.queue_arn}},
    }
    lam.add_response("create_event_source_mapping", {"UUID": UUID_2}, expected)
    lam.add_response("get_event_source_mapping", {"UUID": UUID_2, "State": "Enabled"})
    EventSourceMapping(ctx).create()


def test_mapping_that_lands_disabled_fails_with_the_reason(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    lam = stubbed.stub("lambda")
    lam.add_response("create_event_source_mapping", {"UUID": UUID_3})
    lam.add_response(
        "get_event_source_mapping",
        {"UUID": UUID_3, "State": "Disabled", "StateTransitionReason": "PROBLEM: Role denied"},
    )
    with pytest.raises(ResourceStateError, match="PROBLEM: Role denied"):
        EventSourceMapping(ctx_for(stubbed, clock)).create()


def test_create_topic_rule_retries_unable_to_assume_role(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    iot = stubbed.stub("iot")
    for _ in range(2):
        add_error(iot, "create_topic_rule", "InvalidRequestException", IOT_CANNOT_ASSUME)
    ctx = ctx_for(stubbed, clock)
    rule = TopicRule(ctx)
    iot.add_response(
        "create_topic_rule",
        {},
        {
            "ruleName": ctx.names.rule,
            "topicRulePayload": rule._payload(),
            "tags": f"iotpipe%3Adeployment={ctx.names.deployment}",
        },
    )
    assert rule.create()["arn"] == ctx.names.rule_arn
    assert_backoff(clock.sleeps, 2)
    payload = rule._payload()
    assert payload["errorAction"]["sqs"]["queueUrl"] == QUEUE_URL
    assert payload["actions"][0]["kinesis"]["roleArn"].endswith(ctx.names.rule_role)


def test_invalid_sql_on_topic_rule_is_not_retried(stubbed: Stubbed, clock: FakeClock) -> None:
    iot = stubbed.stub("iot")
    add_error(iot, "create_topic_rule", "SqlParseException", "Expected FROM")
    with pytest.raises(ClientError, match="Expected FROM"):
        TopicRule(ctx_for(stubbed, clock)).create()
    assert clock.sleeps == []


# --- Kinesis: "already exists" is the only ResourceInUseException that means "exists" ---------


def _stream_description(name: str) -> dict[str, Any]:
    return {
        "StreamDescription": {
            "StreamName": name,
            "StreamARN": f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}",
            "StreamStatus": "ACTIVE",
            "Shards": [],
            "HasMoreShards": False,
            "RetentionPeriodHours": 24,
            "StreamCreationTimestamp": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            "EnhancedMonitoring": [],
        }
    }


def test_create_stream_already_exists_counts_as_created(stubbed: Stubbed, clock: FakeClock) -> None:
    ctx = ctx_for(stubbed, clock)
    name = ctx.names.stream
    kin = stubbed.stub("kinesis")
    add_error(
        kin,
        "create_stream",
        "ResourceInUseException",
        f"Stream {name} under account {ACCOUNT} already exists.",
    )
    kin.add_response("describe_stream", _stream_description(name))
    kin.add_response("add_tags_to_stream", {})
    kin.add_response(
        "describe_stream_summary",
        {
            "StreamDescriptionSummary": {
                "StreamName": name,
                "StreamARN": ctx.names.stream_arn,
                "StreamStatus": "ACTIVE",
                "RetentionPeriodHours": 24,
                "StreamCreationTimestamp": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                "EnhancedMonitoring": [],
                "OpenShardCount": 4,
                "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
                "EncryptionType": "KMS",  # encrypted already: no StartStreamEncryption
                "KeyId": "alias/aws/kinesis",
            }
        },
    )
    assert Stream(ctx).create() == {"name": name, "arn": ctx.names.stream_arn}


def test_create_stream_in_use_for_another_reason_is_an_error(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    kin = stubbed.stub("kinesis")
    add_error(kin, "create_stream", "ResourceInUseException", "Stream s is being deleted.")
    with pytest.raises(ClientError, match="being deleted"):
        Stream(ctx_for(stubbed, clock)).create()


# --- delete: NotFound at any step means "already gone" ----------------------------------------


def _sqs_gone(s: Stubbed) -> None:
    add_error(s.stub("sqs"), "get_queue_url", "AWS.SimpleQueueService.NonExistentQueue")


def _sqs_gone_between(s: Stubbed) -> None:
    sqs = s.stub("sqs")
    sqs.add_response("get_queue_url", {"QueueUrl": QUEUE_URL})
    add_error(sqs, "delete_queue", "AWS.SimpleQueueService.NonExistentQueue")


def _stream_gone(s: Stubbed) -> None:
    add_error(s.stub("kinesis"), "delete_stream", "ResourceNotFoundException")


def _timestream_gone(s: Stubbed) -> None:
    add_error(_ts(s), "describe_database", "ResourceNotFoundException")


def _timestream_gone_between(s: Stubbed) -> None:
    ts = _ts(s)
    ts.add_response("describe_database", {"Database": {"DatabaseName": "db"}})
    ts.add_response("list_tables", {"Tables": [{"TableName": "sensor-data"}]})
    add_error(ts, "delete_table", "ResourceNotFoundException")
    add_error(ts, "delete_database", "ResourceNotFoundException")


def _ts(s: Stubbed) -> Any:
    # An explicit endpoint turns off Timestream's endpoint discovery (no DescribeEndpoints).
    return s.stub(
        "timestream-write", endpoint_url="https://ingest.timestream.us-east-1.amazonaws.com"
    )


def _role_gone(s: Stubbed) -> None:
    add_error(s.stub("iam"), "list_role_policies", "NoSuchEntity")


def _role_gone_between(s: Stubbed) -> None:
    iam = s.stub("iam")
    iam.add_response("list_role_policies", {"PolicyNames": ["iotpipe"], "IsTruncated": False})
    add_error(iam, "delete_role_policy", "NoSuchEntity")
    add_error(iam, "list_attached_role_policies", "NoSuchEntity")
    add_error(iam, "delete_role", "NoSuchEntity")


def _logs_gone(s: Stubbed) -> None:
    add_error(s.stub("logs"), "delete_log_group", "ResourceNotFoundException")


def _function_gone(s: Stubbed) -> None:
    add_error(s.stub("lambda"), "delete_function", "ResourceNotFoundException")


def _mapping_none(s: Stubbed) -> None:
    s.stub("lambda").add_response("list_event_source_mappings", {"EventSourceMappings": []})


def _mapping_gone_between(s: Stubbed) -> None:
    lam = s.stub("lambda")
    lam.add_response(
        "list_event_source_mappings",
        {"EventSourceMappings": [{"UUID": UUID_1, "State": "Enabled"}]},
    )
    add_error(lam, "delete_event_source_mapping", "ResourceNotFoundException")


def _rule_unauthorized(s: Stubbed) -> None:
    add_error(s.stub("iot"), "delete_topic_rule", "UnauthorizedException", status=401)


def _rule_not_found(s: Stubbed) -> None:
    add_error(s.stub("iot"), "delete_topic_rule", "ResourceNotFoundException", status=404)


@pytest.mark.parametrize(
    ("kind", "script"),
    [
        (FailureQueue, _sqs_gone),
        (FailureQueue, _sqs_gone_between),
        (Stream, _stream_gone),
        (Timestream, _timestream_gone),
        (Timestream, _timestream_gone_between),
        (FunctionRole, _role_gone),
        (RuleRole, _role_gone_between),
        (LogGroup, _logs_gone),
        (Function, _function_gone),
        (EventSourceMapping, _mapping_none),
        (EventSourceMapping, _mapping_gone_between),
        (TopicRule, _rule_unauthorized),
        (TopicRule, _rule_not_found),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_delete_of_missing_resource_is_done(
    stubbed: Stubbed, clock: FakeClock, kind: type[Resource], script: Any
) -> None:
    script(stubbed)
    assert kind(ctx_for(stubbed, clock)).delete() is False


def test_delete_still_fails_on_real_errors(stubbed: Stubbed, clock: FakeClock) -> None:
    add_error(stubbed.stub("logs"), "delete_log_group", "AccessDeniedException", "no")
    with pytest.raises(ClientError):
        LogGroup(ctx_for(stubbed, clock)).delete()


# --- Timestream for LiveAnalytics closed to new customers -------------------------------------


def test_timestream_access_denied_on_describe_explains_the_closure(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    add_error(_ts(stubbed), "describe_database", "AccessDeniedException", "Access denied")
    with pytest.raises(ServiceUnavailableError) as info:
        Timestream(ctx_for(stubbed, clock)).describe()
    assert TIMESTREAM_CLOSED in str(info.value)
    assert "closed to new customers since 2025-06-20" in str(info.value)
    assert "target: local" in str(info.value)
    assert isinstance(info.value.cause, ClientError)


def test_timestream_access_denied_on_create_explains_the_closure(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    add_error(_ts(stubbed), "create_database", "AccessDeniedException", "Access denied")
    with pytest.raises(ServiceUnavailableError, match="closed to new customers"):
        Timestream(ctx_for(stubbed, clock)).create()


def test_timestream_other_errors_pass_through(stubbed: Stubbed, clock: FakeClock) -> None:
    add_error(_ts(stubbed), "describe_database", "ThrottlingException", "slow down")
    with pytest.raises(ClientError, match="slow down"):
        Timestream(ctx_for(stubbed, clock)).describe()


def test_function_without_queue_gets_no_queue_url(stubbed: Stubbed, clock: FakeClock) -> None:
    cfg = Config(event_source=EventSourceConfig(failure_queue=False))
    env = Function(ctx_for(stubbed, clock, cfg)).desired()["environment"]
    assert set(env) == {"TIMESTREAM_DATABASE", "TIMESTREAM_TABLE"}


def test_queue_create_waits_out_sqs_recently_deleted_window(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    sqs = stubbed.stub("sqs")
    add_error(
        sqs,
        "create_queue",
        "AWS.SimpleQueueService.QueueDeletedRecently",
        "You must wait 60 seconds after deleting a queue before you can create another with "
        "the same name.",
    )
    sqs.add_response("create_queue", {"QueueUrl": QUEUE_URL})
    assert FailureQueue(ctx_for(stubbed, clock)).create()["url"] == QUEUE_URL
    assert len(clock.sleeps) == 1


def test_topic_rule_tags_are_one_url_encoded_string(stubbed: Stubbed, clock: FakeClock) -> None:
    ctx = ctx_for(stubbed, clock, Config(tags={"team": "data eng", "cost": "a/b"}))
    rule = TopicRule(ctx)
    stubbed.stub("iot").add_response(
        "create_topic_rule",
        {},
        {
            "ruleName": ctx.names.rule,
            "topicRulePayload": rule._payload(),
            "tags": f"cost=a%2Fb&iotpipe%3Adeployment={ctx.names.deployment}&team=data%20eng",
        },
    )
    assert rule.create()["name"] == ctx.names.rule
    stubbed.stubbers["iot"].assert_no_pending_responses()  # the tags string matched exactly
