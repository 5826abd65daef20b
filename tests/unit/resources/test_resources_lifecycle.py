"""Every resource kind against moto in-process: create, describe, update, delete, delete again.

Each test drives the resource through its whole life and asserts on what AWS (moto) then
reports, so a resource that "creates" the wrong thing or cannot see its own changes fails.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from resource_helpers import make_ctx

from iotpipe.config import (
    Config,
    EventSourceConfig,
    FunctionConfig,
    IotRuleConfig,
    SensorRange,
    StreamConfig,
    TimestreamConfig,
)
from iotpipe.resources import build
from iotpipe.resources.base import Context, Resource, diff
from iotpipe.resources.function import Function
from iotpipe.resources.logs import LogGroup
from iotpipe.resources.mapping import EventSourceMapping
from iotpipe.resources.queue import RETENTION_SECONDS, FailureQueue
from iotpipe.resources.roles import FunctionRole, RuleRole
from iotpipe.resources.rule import TopicRule
from iotpipe.resources.stream import Stream
from iotpipe.resources.timeseries import Timestream

pytestmark = pytest.mark.usefixtures("moto")

_ALLOW_LISTING = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets",'
    '"Resource":"*"}]}'
)


def up(ctx: Context, *keys: str) -> None:
    """Create the named resources (dependencies first), recording outputs like the engine."""
    for res in build(ctx):
        if res.key in keys:
            ctx.outputs[res.key] = res.create()


def recontext(ctx: Context, config: Config) -> Context:
    """The same deployment and AWS backend, with a changed config."""
    new = make_ctx(config, gateway=ctx.gateway)
    new.outputs.update(ctx.outputs)
    return new


def lifecycle(res: Resource, changed: Resource, expect_changed: set[str]) -> dict[str, Any]:
    """The common life: absent -> created == desired -> updated == desired -> gone."""
    assert res.describe() is None
    out = res.create()
    assert res.outputs() == out
    return after_create(res, changed, expect_changed)


def after_create(res: Resource, changed: Resource, expect_changed: set[str]) -> dict[str, Any]:
    """Second half of :func:`lifecycle`, for a resource the test created itself."""
    assert diff(res.desired(), res.describe() or {}) == {}
    current = changed.describe()
    assert current is not None
    changes = diff(changed.desired(), current)
    assert set(changes) == expect_changed
    changed.update(current, changes)
    after = changed.describe()
    assert after is not None
    assert diff(changed.desired(), after) == {}

    assert changed.delete() is True
    assert changed.describe() is None
    assert changed.delete() is False  # NotFound = done
    return after


def test_queue_drift_is_repaired_and_attributes_are_real() -> None:
    ctx = make_ctx()
    q = FailureQueue(ctx)
    out = q.create()
    sqs = ctx.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=out["url"], AttributeNames=["All"])["Attributes"]
    assert attrs["MessageRetentionPeriod"] == "1209600"  # 14 days, the SQS maximum
    assert attrs["SqsManagedSseEnabled"] == "true"
    assert sqs.list_queue_tags(QueueUrl=out["url"])["Tags"]["iotpipe:deployment"] == (
        ctx.names.deployment
    )
    # Someone shortened the retention by hand: the next `up` puts it back.
    sqs.set_queue_attributes(QueueUrl=out["url"], Attributes={"MessageRetentionPeriod": "60"})
    current = q.describe()
    assert current is not None
    assert diff(q.desired(), current) == {"retention_seconds": (60, RETENTION_SECONDS)}
    q.update(current, diff(q.desired(), current))
    assert diff(q.desired(), q.describe() or {}) == {}
    assert q.delete() is True
    assert q.describe() is None
    assert q.delete() is False


def test_queue_disabled_removes_it_from_everything_that_points_at_it() -> None:
    cfg = Config(event_source=EventSourceConfig(failure_queue=False))
    ctx = make_ctx(cfg)
    assert FailureQueue(ctx).enabled() is False
    assert "FAILURE_QUEUE_URL" not in Function(ctx).desired()["environment"]
    assert TopicRule(ctx).desired()["error_action"] is None
    assert EventSourceMapping(ctx).desired()["on_failure"] is None
    for role in (FunctionRole(ctx), RuleRole(ctx)):
        actions = [a for s in role.policy()["Statement"] for a in s["Action"]]
        assert not [a for a in actions if a.startswith("sqs:")]


def test_stream_lifecycle_retention_and_tags() -> None:
    ctx = make_ctx()
    longer = recontext(ctx, Config(stream=StreamConfig(retention_hours=48)))
    after = lifecycle(Stream(ctx), Stream(longer), {"retention_hours"})
    assert after["retention_hours"] == 48


def test_stream_mode_change_to_provisioned() -> None:
    ctx = make_ctx()
    stream = Stream(ctx)
    stream.create()
    tags = ctx.client("kinesis").list_tags_for_stream(StreamName=ctx.names.stream)["Tags"]
    assert {"Key": "iotpipe:deployment", "Value": ctx.names.deployment} in tags
    prov = Stream(recontext(ctx, Config(stream=StreamConfig(mode="provisioned", shards=2))))
    current = prov.describe()
    assert current is not None and current["mode"] == "ON_DEMAND"
    prov.update(current, diff(prov.desired(), current))
    after = prov.describe()
    assert after is not None
    assert (after["mode"], after["shards"]) == ("PROVISIONED", 2)


def test_timestream_lifecycle() -> None:
    ctx = make_ctx()
    cfg = Config(timestream=TimestreamConfig(memory_retention_hours=48, magnetic_writes=False))
    after = lifecycle(
        Timestream(ctx),
        Timestream(recontext(ctx, cfg)),
        {"memory_retention_hours", "magnetic_writes"},
    )
    assert after["memory_retention_hours"] == 48
    assert after["magnetic_writes"] is False


def test_timestream_create_tolerates_existing_database() -> None:
    ctx = make_ctx()
    ctx.client("timestream-write").create_database(DatabaseName=ctx.names.database)
    ts = Timestream(ctx)
    assert ts.describe() is None  # no table yet: a half-finished `up`
    ts.create()
    assert diff(ts.desired(), ts.describe() or {}) == {}


@pytest.mark.parametrize("kind", [FunctionRole, RuleRole])
def test_role_lifecycle_policy_follows_the_queue_switch(kind: type[Resource]) -> None:
    ctx = make_ctx()
    no_queue = recontext(ctx, Config(event_source=EventSourceConfig(failure_queue=False)))
    res = kind(ctx)
    assert res.describe() is None
    res.create()
    # An extra managed policy someone attached must not stop `down`.
    iam = ctx.client("iam")
    arn = iam.create_policy(PolicyName="extra", PolicyDocument=_ALLOW_LISTING)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=res.name, PolicyArn=arn)
    after = after_create(res, kind(no_queue), {"policy"})
    assert "sqs:SendMessage" not in str(after["policy"])


def test_log_group_lifecycle() -> None:
    ctx = make_ctx()
    cfg = Config(function=FunctionConfig(log_retention_days=30))
    after = lifecycle(LogGroup(ctx), LogGroup(recontext(ctx, cfg)), {"retention_days"})
    assert after["retention_days"] == 30


def test_function_lifecycle_code_and_configuration() -> None:
    ctx = make_ctx()
    up(ctx, "queue", "function_role", "log_group", "timestream")
    # A different sensor range changes settings.json, hence the zip and its SHA-256.
    sensors = {**Config().sensors, "temperature": SensorRange(-40, 125)}
    cfg = Config(function=FunctionConfig(memory_mb=512), sensors=sensors)
    changed = recontext(ctx, cfg)
    assert changed.function_sha256 != ctx.function_sha256
    after = lifecycle(Function(ctx), Function(changed), {"memory_mb", "code_sha256"})
    assert after["code_sha256"] == changed.function_sha256
    assert after["environment"]["FAILURE_QUEUE_URL"] == ctx.outputs["queue"]["url"]


def test_mapping_lifecycle_batch_size() -> None:
    ctx = make_ctx()
    up(ctx, "queue", "stream", "timestream", "function_role", "log_group", "function")
    cfg = Config(event_source=dataclasses.replace(EventSourceConfig(), batch_size=200))
    mapping = EventSourceMapping(ctx)
    assert mapping.describe() is None
    out = mapping.create()
    current = mapping.describe()
    assert current is not None
    assert current["on_failure"] == ctx.names.queue_arn
    assert current["starting_position"] == "TRIM_HORIZON"
    bigger = EventSourceMapping(recontext(ctx, cfg))
    changes = diff(bigger.desired(), current)
    assert changes == {"batch_size": (100, 200)}
    assert bigger.update(current, changes)["uuid"] == out["uuid"]  # in place
    assert (bigger.describe() or {})["batch_size"] == 200
    assert bigger.delete() is True
    assert bigger.describe() is None
    assert bigger.delete() is False


def test_mapping_dropping_the_queue_recreates_it_without_destination() -> None:
    ctx = make_ctx()
    up(ctx, "queue", "stream", "timestream", "function_role", "log_group", "function")
    first = EventSourceMapping(ctx).create()
    cfg = Config(event_source=EventSourceConfig(failure_queue=False))
    plain = EventSourceMapping(recontext(ctx, cfg))
    current = plain.describe()
    assert current is not None
    # The engine replaces (delete + create) what the mapping cannot change in place.
    assert plain.recreates(diff(plain.desired(), current))
    assert plain.delete() is True
    out = plain.create()
    assert out["uuid"] != first["uuid"]
    assert (plain.describe() or {})["on_failure"] is None
    listed = ctx.client("lambda").list_event_source_mappings(FunctionName=ctx.names.function)
    assert len(listed["EventSourceMappings"]) == 1


def test_rule_lifecycle_topic_change() -> None:
    ctx = make_ctx()
    up(ctx, "queue")
    cfg = Config(iot_rule=IotRuleConfig(topic="plant/+/telemetry"))
    after = lifecycle(TopicRule(ctx), TopicRule(recontext(ctx, cfg)), {"sql"})
    assert after["sql"] == "SELECT *, timestamp() AS processing_time FROM 'plant/+/telemetry'"
    assert after["error_action"]["sqs"]["queueUrl"] == ctx.outputs["queue"]["url"]


def test_whole_stack_up_and_down_in_order() -> None:
    ctx = make_ctx()
    resources = [r for r in build(ctx) if r.enabled()]
    for res in resources:
        ctx.outputs[res.key] = res.create()
    assert all(diff(r.desired(), r.describe() or {}) == {} for r in resources)
    assert [r.delete() for r in reversed(resources)] == [True] * len(resources)
    assert all(r.describe() is None for r in resources)


def test_mapping_gains_a_destination_in_place() -> None:
    ctx = make_ctx(Config(event_source=EventSourceConfig(failure_queue=False)))
    up(ctx, "stream", "timestream", "function_role", "log_group", "function")
    first = EventSourceMapping(ctx).create()
    with_queue = recontext(ctx, Config())
    up(with_queue, "queue")
    mapping = EventSourceMapping(with_queue)
    current = mapping.describe()
    assert current is not None and current["on_failure"] is None
    changes = diff(mapping.desired(), current)
    assert changes == {"on_failure": (None, with_queue.names.queue_arn)}
    assert mapping.update(current, changes)["uuid"] == first["uuid"]
    assert (mapping.describe() or {})["on_failure"] == with_queue.names.queue_arn
