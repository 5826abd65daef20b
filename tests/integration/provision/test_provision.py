"""`up`/`down` against moto, in-process and over HTTP: the issue's acceptance tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from provision_helpers import CallLog, aws_config, make_deployment

from iotpipe.config import EventSourceConfig, FunctionConfig, LakeConfig, TimestreamConfig
from iotpipe.discover import find_suffixes
from iotpipe.engine import Engine, StepFailed
from iotpipe.target import resolve


def leftovers(dep: Any) -> list[str]:
    """Everything in the account whose name carries this deployment's name."""
    gw, base = dep.gateway, dep.config.name
    found: list[str] = []
    found += [s for s in gw.client("kinesis").list_streams()["StreamNames"] if base in s]
    found += [f["FunctionName"] for f in gw.client("lambda").list_functions()["Functions"]]
    found += [
        m["UUID"] for m in gw.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    ]
    found += [
        r["RoleName"] for r in gw.client("iam").list_roles()["Roles"] if base in r["RoleName"]
    ]
    found += gw.client("sqs").list_queues().get("QueueUrls", [])
    found += [r["ruleName"] for r in gw.client("iot").list_topic_rules()["rules"]]
    found += [
        d["DatabaseName"] for d in gw.client("timestream-write").list_databases()["Databases"]
    ]
    found += [
        g["logGroupName"]
        for g in gw.client("logs").describe_log_groups()["logGroups"]
        if base in g["logGroupName"]
    ]
    return found


def test_up_creates_every_resource_as_configured(aws_endpoint: str | None, home: Path) -> None:
    cfg = aws_config(
        event_source=EventSourceConfig(batch_size=250, batching_window_s=2),
        function=FunctionConfig(memory_mb=512, timeout_s=30),
        timestream=TimestreamConfig(memory_retention_hours=12, magnetic_retention_days=30),
    )
    dep = make_deployment(cfg, aws_endpoint)
    outputs = Engine(dep, sleep=lambda s: None).apply()
    n, gw = dep.names, dep.gateway

    summary = gw.client("kinesis").describe_stream_summary(StreamName=n.stream)
    assert summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"
    assert summary["StreamDescriptionSummary"]["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"

    table = gw.client("timestream-write").describe_table(DatabaseName=n.database, TableName=n.table)
    retention = table["Table"]["RetentionProperties"]
    assert retention == {
        "MemoryStoreRetentionPeriodInHours": 12,
        "MagneticStoreRetentionPeriodInDays": 30,
    }

    fn = gw.client("lambda").get_function_configuration(FunctionName=n.function)
    assert (fn["MemorySize"], fn["Timeout"], fn["Runtime"]) == (512, 30, "python3.13")
    assert fn["Role"] == n.role_arn(n.function_role)
    assert fn["Environment"]["Variables"]["TIMESTREAM_DATABASE"] == n.database
    assert fn["Environment"]["Variables"]["FAILURE_QUEUE_URL"] == outputs["queue"]["url"]

    esm = gw.client("lambda").get_event_source_mapping(UUID=outputs["mapping"]["uuid"])
    assert (esm["BatchSize"], esm["MaximumBatchingWindowInSeconds"]) == (250, 2)
    assert esm["StartingPosition"] == "TRIM_HORIZON"
    assert esm["EventSourceArn"] == n.stream_arn
    assert esm["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert esm["DestinationConfig"]["OnFailure"]["Destination"] == n.queue_arn

    rule = gw.client("iot").get_topic_rule(ruleName=n.rule)["rule"]
    assert rule["sql"] == "SELECT *, timestamp() AS processing_time FROM 'iot/sensors/+/data'"
    assert rule["awsIotSqlVersion"] == "2016-03-23"
    kinesis_action = rule["actions"][0]["kinesis"]
    assert kinesis_action["streamName"] == n.stream
    assert kinesis_action["partitionKey"] == "${deviceId}"
    assert kinesis_action["roleArn"] == n.role_arn(n.rule_role)
    assert rule["errorAction"]["sqs"]["queueUrl"] == outputs["queue"]["url"]

    state = json.loads((home / "iot-telemetry.aws.us-east-1.123456789012.json").read_text())
    assert (
        state["suffix"] == n.suffix
        and state["resources"]["mapping"]["uuid"] == outputs["mapping"]["uuid"]
    )
    assert "SecretAccessKey" not in json.dumps(state) and "testing" not in json.dumps(state)


def test_second_up_makes_zero_mutating_calls_and_changes_update_in_place(
    aws_endpoint: str | None, home: Path
) -> None:
    Engine(make_deployment(aws_config(), aws_endpoint), sleep=lambda s: None).apply()

    log = CallLog()
    again = make_deployment(aws_config(), aws_endpoint, log)
    assert Engine(again, sleep=lambda s: None).plan().changes == []
    Engine(again, sleep=lambda s: None).apply()
    assert log.mutating == [], log.mutating

    log = CallLog()
    changed = aws_config(
        event_source=EventSourceConfig(batch_size=10),
        function=FunctionConfig(memory_mb=1024),
    )
    dep = make_deployment(changed, aws_endpoint, log)
    plan = Engine(dep, sleep=lambda s: None).plan()
    assert sorted((s.key, s.action) for s in plan.changes) == [
        ("function", "update"),
        ("mapping", "update"),
    ]
    Engine(dep, sleep=lambda s: None).apply()
    assert sorted(op for _, op in log.mutating) == [
        "UpdateEventSourceMapping",
        "UpdateFunctionConfiguration",
    ]


def test_down_leaves_nothing_and_works_without_state(aws_endpoint: str | None, home: Path) -> None:
    dep = make_deployment(aws_config(), aws_endpoint)
    Engine(dep, sleep=lambda s: None).apply()
    assert leftovers(dep)
    dep.state.delete()  # a fresh checkout: only the config is known
    found = resolve(aws_config(), dep.gateway, discover=find_suffixes)
    assert found.names.suffix == dep.names.suffix
    Engine(found, sleep=lambda s: None).destroy()
    assert leftovers(dep) == []
    Engine(found, sleep=lambda s: None).destroy()  # again: NotFound is done


CREATE_OPS = [
    ("sqs", "CreateQueue"),
    ("kinesis", "CreateStream"),
    ("timestream-write", "CreateTable"),
    ("iam", "CreateRole"),
    ("iam", "PutRolePolicy"),
    ("logs", "CreateLogGroup"),
    ("lambda", "CreateFunction"),
    ("lambda", "CreateEventSourceMapping"),
    ("iot", "CreateTopicRule"),
]


def interrupted_then_rerun(
    monkeypatch: pytest.MonkeyPatch, config: Any, fail_at: tuple[str, str]
) -> Any:
    """`up` failing at ``fail_at``, then run again to completion; the finished deployment
    (on moto in-process: the caller asserts inside its own ``mock_aws``)."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    log = CallLog()
    log.fail_at = fail_at
    dep = make_deployment(config, None, log)
    with pytest.raises(StepFailed, match="injected failure"):
        Engine(dep, sleep=lambda s: None).apply()
    assert fail_at in log.calls
    rerun = make_deployment(config, None)
    assert rerun.names.suffix == dep.names.suffix  # the suffix survived in state
    Engine(rerun, sleep=lambda s: None).apply()
    # A re-run of the finished `up`: nothing to change and no mutating call.
    again = CallLog()
    Engine(make_deployment(config, None, again), sleep=lambda s: None).apply()
    assert again.mutating == [], again.mutating
    return rerun


@pytest.mark.parametrize("fail_at", CREATE_OPS, ids=[op for _, op in CREATE_OPS])
def test_up_interrupted_at_each_step_then_rerun_completes_and_down_is_clean(
    home: Path, monkeypatch: pytest.MonkeyPatch, fail_at: tuple[str, str]
) -> None:
    from moto import mock_aws

    with mock_aws():
        rerun = interrupted_then_rerun(monkeypatch, aws_config(), fail_at)
        assert Engine(make_deployment(aws_config(), None)).plan().changes == []
        Engine(rerun, sleep=lambda s: None).destroy()
        assert leftovers(rerun) == []


def lake_leftovers(dep: Any) -> list[str]:
    """The lake's resources in the account, beside the rest."""
    gw = dep.gateway
    found = leftovers(dep)
    found += [b["Name"] for b in gw.client("s3").list_buckets()["Buckets"]]
    found += [d["Name"] for d in gw.client("glue").get_databases()["DatabaseList"]]
    found += [
        w["Name"]
        for w in gw.client("athena").list_work_groups()["WorkGroups"]
        if w["Name"] != "primary"
    ]
    found += gw.client("firehose").list_delivery_streams()["DeliveryStreamNames"]
    return found


def lake_only() -> Any:
    return aws_config(timestream=TimestreamConfig(enabled=False), lake=LakeConfig(enabled=True))


# Every creating call of the lake-only pipeline (each the first of its kind there).
LAKE_CREATE_OPS = [
    ("s3", "CreateBucket"),
    ("s3", "PutPublicAccessBlock"),
    ("s3", "PutBucketEncryption"),
    ("s3", "PutBucketLifecycleConfiguration"),
    ("glue", "CreateDatabase"),
    ("glue", "CreateTable"),
    ("athena", "CreateWorkGroup"),
    ("iam", "CreateRole"),
    ("iam", "PutRolePolicy"),
    ("logs", "CreateLogGroup"),
    ("lambda", "CreateFunction"),
    ("firehose", "CreateDeliveryStream"),
    ("iot", "CreateTopicRule"),
]


@pytest.mark.parametrize("fail_at", LAKE_CREATE_OPS, ids=[op for _, op in LAKE_CREATE_OPS])
def test_a_lake_only_up_interrupted_at_each_step_recovers_and_down_is_clean(
    home: Path, monkeypatch: pytest.MonkeyPatch, fail_at: tuple[str, str]
) -> None:
    from moto import mock_aws

    with mock_aws():
        rerun = interrupted_then_rerun(monkeypatch, lake_only(), fail_at)
        ts = rerun.gateway.client("timestream-write")
        assert ts.list_databases()["Databases"] == []
        Engine(rerun, sleep=lambda s: None).destroy()
        assert lake_leftovers(rerun) == []


def test_downs_prompt_says_how_many_objects_and_bytes_the_lake_loses(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto import mock_aws

    from iotpipe.cli.provision import holdings

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    with mock_aws():
        dep = make_deployment(lake_only(), None)
        engine = Engine(dep, sleep=lambda s: None)
        engine.apply()
        assert holdings(engine) == ""  # an empty bucket holds nothing worth naming
        s3 = dep.gateway.client("s3")
        for n in range(3):
            s3.put_object(Bucket=dep.names.bucket, Key=f"data/x{n}", Body=b"x" * 500_000)
        assert holdings(engine) == f" (3 objects (1.5 MB) in bucket {dep.names.bucket})"
