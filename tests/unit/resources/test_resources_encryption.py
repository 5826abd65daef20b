"""Encryption at rest (issue 8, item 13): the stream with SSE-KMS, the queue with SSE-SQS,
and the one KMS permission each role needs for a customer key (none for the AWS key).

moto shows the calls and the resulting attributes; Stubber shows what moto cannot: the
stream UPDATING after StartStreamEncryption until ACTIVE, and a customer key given as an
alias resolved through DescribeKey to the key ARN that the role policies grant.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.stub import ANY
from resource_helpers import ACCOUNT, REGION, FakeClock, Stubbed, make_ctx

from iotpipe.config import Config, StreamConfig
from iotpipe.engine import Engine
from iotpipe.errors import IotpipeError
from iotpipe.resources.base import diff
from iotpipe.resources.queue import FailureQueue
from iotpipe.resources.roles import FunctionRole, RuleRole
from iotpipe.resources.stream import Stream

KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}"


def kms_statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in doc["Statement"] if any(a.startswith("kms:") for a in s["Action"])]


@pytest.mark.usefixtures("moto")
def test_stream_is_created_encrypted_with_the_aws_managed_key() -> None:
    ctx = make_ctx()
    stream = Stream(ctx)
    assert stream.desired()["encryption"] == "KMS alias/aws/kinesis"
    stream.create()
    summary = ctx.client("kinesis").describe_stream_summary(StreamName=ctx.names.stream)
    described = summary["StreamDescriptionSummary"]
    assert (described["EncryptionType"], described["KeyId"]) == ("KMS", "alias/aws/kinesis")
    assert diff(stream.desired(), stream.describe() or {}) == {}
    # The AWS-managed key needs no KMS permission in either role.
    assert kms_statements(FunctionRole(ctx).policy()) == []
    assert kms_statements(RuleRole(ctx).policy()) == []


@pytest.mark.usefixtures("moto")
def test_an_unencrypted_stream_is_planned_and_updated_to_encrypted() -> None:
    ctx = make_ctx()
    kinesis = ctx.client("kinesis")
    kinesis.create_stream(
        StreamName=ctx.names.stream, StreamModeDetails={"StreamMode": "ON_DEMAND"}
    )
    stream = Stream(ctx)
    current = stream.describe() or {}
    changes = diff(stream.desired(), current)
    assert changes == {"encryption": ("NONE", "KMS alias/aws/kinesis")}
    stream.update(current, changes)
    assert diff(stream.desired(), stream.describe() or {}) == {}


@pytest.mark.usefixtures("moto")
def test_plan_shows_encryption_for_new_stream_and_queue(tmp_path: Any) -> None:
    from iotpipe.naming import Names
    from iotpipe.state import State
    from iotpipe.target import Deployment

    ctx = make_ctx()
    dep = Deployment(ctx.config, ctx.gateway, ctx.names, State(tmp_path / "s.json"))
    steps = {s.key: s for s in Engine(dep).plan().steps}
    assert steps["stream"].action == "create"
    assert steps["stream"].changes == {"encryption": (None, "KMS alias/aws/kinesis")}
    assert steps["queue"].changes == {"sse": (None, True)}
    assert isinstance(dep.names, Names)


@pytest.mark.usefixtures("moto")
def test_queue_states_sse_sqs_explicitly_and_drift_is_seen() -> None:
    ctx = make_ctx()
    queue = FailureQueue(ctx)
    calls: list[dict[str, Any]] = []
    sqs = ctx.client("sqs")
    sqs.meta.events.register(
        "provide-client-params.sqs.CreateQueue", lambda params, **_: calls.append(params)
    )
    out = queue.create()
    assert calls[0]["Attributes"]["SqsManagedSseEnabled"] == "true"
    sqs.set_queue_attributes(QueueUrl=out["url"], Attributes={"SqsManagedSseEnabled": "false"})
    assert diff(queue.desired(), queue.describe() or {}) == {"sse": (False, True)}


def test_customer_key_alias_is_resolved_and_granted_to_each_role(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    cfg = Config(stream=StreamConfig(kms_key="alias/telemetry"))
    ctx = make_ctx(cfg, gateway=stubbed.gateway, clock=clock)
    kms = stubbed.stub("kms")
    kms.add_response(
        "describe_key",
        {"KeyMetadata": {"KeyId": KEY_ID, "Arn": KEY_ARN, "KeyManager": "CUSTOMER"}},
        {"KeyId": "alias/telemetry"},
    )
    fn = kms_statements(FunctionRole(ctx).policy())
    rule = kms_statements(RuleRole(ctx).policy())  # DescribeKey once: the ARN is cached
    context = {"StringEquals": {"kms:EncryptionContext:aws:kinesis:arn": ctx.names.stream_arn}}
    assert fn == [
        {
            "Sid": "DecryptStream",
            "Effect": "Allow",
            "Action": ["kms:Decrypt"],
            "Resource": [KEY_ARN],
            "Condition": context,
        }
    ]
    assert rule == [
        {
            "Sid": "EncryptForStream",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey"],
            "Resource": [KEY_ARN],
            "Condition": context,
        }
    ]


def test_a_missing_customer_key_is_a_clear_error(stubbed: Stubbed, clock: FakeClock) -> None:
    ctx = make_ctx(
        Config(stream=StreamConfig(kms_key="alias/nope")), gateway=stubbed.gateway, clock=clock
    )
    kms = stubbed.stub("kms")
    kms.add_client_error(
        "describe_key", "NotFoundException", "Alias arn:aws:kms:...:alias/nope is not found."
    )
    with pytest.raises(IotpipeError, match=r"stream.kms_key alias/nope: no such KMS key"):
        FunctionRole(ctx).policy()


def test_a_key_in_another_region_is_refused_before_any_call(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    other = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{KEY_ID}"
    ctx = make_ctx(Config(stream=StreamConfig(kms_key=other)), gateway=stubbed.gateway)
    with pytest.raises(IotpipeError, match="is in eu-west-1, the stream in us-east-1"):
        RuleRole(ctx).policy()


def _summary(name: str, encryption: str = "NONE", key: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "StreamName": name,
        "StreamARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}",
        "StreamStatus": "ACTIVE",
        "RetentionPeriodHours": 24,
        "StreamCreationTimestamp": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "EnhancedMonitoring": [],
        "OpenShardCount": 1,
        "StreamModeDetails": {"StreamMode": "ON_DEMAND"},
        "EncryptionType": encryption,
    }
    if key:
        body["KeyId"] = key
    return {"StreamDescriptionSummary": body}


def _described(name: str, status: str) -> dict[str, Any]:
    return {
        "StreamDescription": {
            "StreamName": name,
            "StreamARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}",
            "StreamStatus": status,
            "Shards": [],
            "HasMoreShards": False,
            "RetentionPeriodHours": 24,
            "StreamCreationTimestamp": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            "EnhancedMonitoring": [],
        }
    }


def test_create_encrypts_with_the_customer_key_and_waits_out_updating(
    stubbed: Stubbed, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    waited: list[float] = []
    # the waiter's own view of `time` only: patching time.sleep would catch every thread's
    monkeypatch.setattr("botocore.waiter.time", SimpleNamespace(sleep=waited.append))
    cfg = Config(stream=StreamConfig(kms_key=KEY_ARN))
    ctx = make_ctx(cfg, gateway=stubbed.gateway, clock=clock)
    name = ctx.names.stream
    kin = stubbed.stub("kinesis")
    kin.add_response("create_stream", {}, {"StreamName": name, "StreamModeDetails": ANY})
    kin.add_response("describe_stream", _described(name, "ACTIVE"))
    kin.add_response("add_tags_to_stream", {})
    kin.add_response("describe_stream_summary", _summary(name))
    kin.add_response(
        "start_stream_encryption",
        {},
        {"StreamName": name, "EncryptionType": "KMS", "KeyId": KEY_ARN},
    )
    kin.add_response("describe_stream", _described(name, "UPDATING"))
    kin.add_response("describe_stream", _described(name, "ACTIVE"))
    Stream(ctx).create()
    assert len(waited) == 1  # one poll while UPDATING, then ACTIVE
    kin.add_response("describe_stream_summary", _summary(name, "KMS", KEY_ARN))
    assert Stream(ctx).describe()["encryption"] == f"KMS {KEY_ARN}"  # type: ignore[index]


def test_kinesis_reporting_the_alias_arn_is_the_same_key(
    stubbed: Stubbed, clock: FakeClock
) -> None:
    ctx = make_ctx(gateway=stubbed.gateway, clock=clock)
    kin = stubbed.stub("kinesis")
    alias_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/kinesis"
    kin.add_response("describe_stream_summary", _summary(ctx.names.stream, "KMS", alias_arn))
    assert Stream(ctx).describe()["encryption"] == "KMS alias/aws/kinesis"  # type: ignore[index]
