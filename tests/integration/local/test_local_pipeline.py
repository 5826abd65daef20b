"""Kinesis -> deployed function -> Timestream on the embedded AWS, driven through boto3."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from localaws_helpers import TEST_HANDLER, make_zip, wait_for

pytestmark = pytest.mark.integration

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def test_provisioning_calls_as_the_engine_makes_them(local_aws):
    """Every call `up` makes is accepted, and answers what its waiters need."""
    aws, n = local_aws, local_aws.name
    k, sqs, iam = aws.client("kinesis"), aws.client("sqs"), aws.client("iam")
    tw, lam, iot = aws.client("timestream-write"), aws.client("lambda"), aws.client("iot")
    stream, db, table, fn, rule = n("s"), n("db"), "sensor-data", n("fn"), n("rule")
    k.create_stream(StreamName=stream, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    k.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1})
    summary = k.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    queue_url = sqs.create_queue(QueueName=n("dlq"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    role = iam.create_role(RoleName=n("role"), AssumeRolePolicyDocument=json.dumps(TRUST))["Role"][
        "Arn"
    ]
    tags = [{"Key": "project", "Value": "iot-telemetry"}]
    tw.create_database(DatabaseName=db, Tags=tags)
    created = tw.create_table(
        DatabaseName=db,
        TableName=table,
        Tags=tags,
        RetentionProperties={
            "MemoryStoreRetentionPeriodInHours": 24,
            "MagneticStoreRetentionPeriodInDays": 365,
        },
        MagneticStoreWriteProperties={"EnableMagneticStoreWrites": True},
    )["Table"]
    assert tw.list_tags_for_resource(ResourceARN=created["Arn"])["Tags"] == tags
    with pytest.raises(tw.exceptions.ConflictException):
        tw.create_table(DatabaseName=db, TableName=table)
    lam.create_function(
        FunctionName=fn,
        Runtime="python3.13",
        Role=role,
        Handler="fn.handler",
        Code={"ZipFile": make_zip({"fn.py": TEST_HANDLER})},
        Architectures=["arm64"],
        MemorySize=256,
        Timeout=60,
        Environment={
            "Variables": {
                "TIMESTREAM_DATABASE": db,
                "TIMESTREAM_TABLE": table,
                "FAILURE_QUEUE_URL": queue_url,
            }
        },
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=fn)
    mapping = lam.create_event_source_mapping(
        FunctionName=fn,
        EventSourceArn=summary["StreamARN"],
        StartingPosition="TRIM_HORIZON",
        BatchSize=100,
        MaximumBatchingWindowInSeconds=1,
        ParallelizationFactor=1,
        MaximumRetryAttempts=5,
        MaximumRecordAgeInSeconds=3600,
        BisectBatchOnFunctionError=True,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    got = lam.get_event_source_mapping(UUID=mapping["UUID"])
    assert (
        got["State"] == "Enabled"
        and got["DestinationConfig"]["OnFailure"]["Destination"] == queue_arn
    )
    iot.create_topic_rule(
        ruleName=rule,
        topicRulePayload={
            "sql": "SELECT *, timestamp() AS processing_time FROM 'iot/sensors/+/data'",
            "awsIotSqlVersion": "2016-03-23",
            "ruleDisabled": False,
            "actions": [
                {"kinesis": {"streamName": stream, "partitionKey": "${deviceId}", "roleArn": role}}
            ],
            "errorAction": {"sqs": {"queueUrl": queue_url, "roleArn": role, "useBase64": False}},
        },
    )
    assert (
        iot.get_topic_rule(ruleName=rule)["rule"]["actions"][0]["kinesis"]["streamName"] == stream
    )
    iot.delete_topic_rule(ruleName=rule)  # other tests publish to the same topic


@pytest.mark.parametrize("layout", ["single", "multi"])
def test_records_reach_timestream_through_the_function(pipeline, layout):
    p = pipeline(
        shards=2,
        env={"LAYOUT": layout},
        mapping={"BatchSize": 50, "MaximumBatchingWindowInSeconds": 1},
    )
    now = int(time.time() * 1000)
    msgs = [
        {"deviceId": f"sensor{i % 4}", "temperature": 20 + i % 5, "humidity": 40, "t": now - i}
        for i in range(300)
    ]
    p.put(msgs[:150], key="a")
    p.put(msgs[150:], key="b")
    wait_for(lambda: p.query("SELECT count(*) AS n FROM {t}")[0]["n"] == "300", what="300 rows")
    if layout == "single":
        avg = p.query(
            "SELECT DeviceId, avg(measure_value::double) as avg_temperature FROM {t} "
            "WHERE measure_name = 'v1' AND time > ago(1h) GROUP BY DeviceId ORDER BY DeviceId"
        )
    else:
        avg = p.query(
            "SELECT DeviceId, avg(temperature) as avg_temperature FROM {t} "
            "WHERE measure_name = 'metrics' AND time > ago(1h) GROUP BY DeviceId ORDER BY DeviceId"
        )
    assert [r["DeviceId"] for r in avg] == ["sensor0", "sensor1", "sensor2", "sensor3"]
    assert float(avg[0]["avg_temperature"]) == pytest.approx(
        sum(20 + i % 5 for i in range(0, 300, 4)) / 75
    )
    recent = p.query("SELECT * FROM {t} WHERE time > ago(1h) ORDER BY time DESC LIMIT 10")
    assert len(recent) == 10 and recent[0]["Location"] == "lab"  # CommonAttributes were merged
    binned = p.query(
        "SELECT bin(time, 1m) AS minute, count(*) AS n FROM {t} GROUP BY bin(time, 1m)"
    )
    assert sum(int(r["n"]) for r in binned) == 300
    status = local_status_function(p)
    assert status["invocations"] >= 6 and status["errors"] == 0


def local_status_function(p):
    fns = {f["name"]: f for f in p.aws.status()["functions"]}
    return fns[p.function]


def test_clients_configured_only_by_aws_endpoint_url(local_env, pipeline, monkeypatch):
    """botocore still runs endpoint discovery for Timestream: it must come back here."""
    p = pipeline()
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    tw, tq = boto3.client("timestream-write"), boto3.client("timestream-query")
    assert tw.describe_endpoints()["Endpoints"][0]["Address"] == local_env.endpoint
    record = {
        "Dimensions": [{"Name": "DeviceId", "Value": "x"}],
        "MeasureName": "m",
        "MeasureValue": "1",
        "MeasureValueType": "BIGINT",
        "Time": str(int(time.time() * 1000)),
    }
    tw.write_records(DatabaseName=p.db, TableName=p.table, Records=[record])
    rows = tq.query(QueryString=f'SELECT "measure_value::bigint" FROM "{p.db}"."{p.table}"')["Rows"]
    assert rows == [{"Data": [{"ScalarValue": "1"}]}]


def test_lambda_invoke_runs_the_deployed_zip(pipeline, local_aws):
    p = pipeline(
        code="def handler(event, context):\n    return {'echo': event, 'fn': context.function_name}\n"
    )
    out = local_aws.client("lambda").invoke(FunctionName=p.function, Payload=json.dumps({"a": 1}))
    assert json.loads(out["Payload"].read()) == {"echo": {"a": 1}, "fn": p.function}
    assert "FunctionError" not in out
