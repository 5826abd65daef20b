"""IoT publish -> topic rule -> Kinesis -> function -> Timestream, and the rule's errorAction."""

from __future__ import annotations

import base64
import json
import time

import pytest
from localaws_helpers import add_mapping, wait_for

pytestmark = pytest.mark.integration

RULE_SQL = "SELECT *, timestamp() AS processing_time FROM 'iot/sensors/+/data'"


def create_rule(aws, name, stream, queue_url, sql=RULE_SQL, disabled=False):
    role = "arn:aws:iam::123456789012:role/iot-rule"
    aws.client("iot").create_topic_rule(
        ruleName=name,
        topicRulePayload={
            "sql": sql,
            "awsIotSqlVersion": "2016-03-23",
            "ruleDisabled": disabled,
            "actions": [
                {"kinesis": {"streamName": stream, "partitionKey": "${deviceId}", "roleArn": role}}
            ],
            "errorAction": {"sqs": {"queueUrl": queue_url, "roleArn": role, "useBase64": False}},
        },
    )


def test_publish_runs_the_rule_into_the_pipeline(pipeline, local_aws):
    p = pipeline(env={"LAYOUT": "multi"})
    rule = local_aws.name("rule")
    topic_root = local_aws.name("t")
    create_rule(
        local_aws, rule, p.stream, p.queue_url, sql=RULE_SQL.replace("iot/sensors", topic_root)
    )
    add_mapping(p)
    data = local_aws.client("iot-data")
    now = int(time.time() * 1000)
    before = int(time.time() * 1000)
    for i in range(3):
        payload = {"deviceId": f"dev{i}", "temperature": 20.5 + i, "humidity": 50, "t": now - i}
        data.publish(topic=f"{topic_root}/dev{i}/data", qos=1, payload=json.dumps(payload).encode())
    data.publish(topic=f"{topic_root}/dev9/other", qos=1, payload=b'{"deviceId": "dev9", "t": 1}')
    wait_for(lambda: p.device_ids() == ["dev0", "dev1", "dev2"], what="three devices in Timestream")
    rows = p.query("SELECT DeviceId, temperature, processing_time FROM {t} ORDER BY DeviceId")
    assert [float(r["temperature"]) for r in rows] == [20.5, 21.5, 22.5]
    assert all(int(r["processing_time"]) >= before for r in rows)
    local_aws.client("iot").disable_topic_rule(ruleName=rule)
    data.publish(topic=f"{topic_root}/dev5/data", qos=1, payload=b'{"deviceId": "dev5", "t": 1}')
    # rules run inside publish: what reached the stream is there now
    keys = [json.loads(rec["Data"]) for rec in stream_records(local_aws, p.stream)]
    assert sorted(m["deviceId"] for m in keys) == ["dev0", "dev1", "dev2"]  # not dev9 nor dev5
    assert all("processing_time" in m for m in keys)
    partition_keys = {rec["PartitionKey"] for rec in stream_records(local_aws, p.stream)}
    assert partition_keys == {"dev0", "dev1", "dev2"}  # partitionKey "${deviceId}" substituted
    assert local_aws.status()["counters"].get("iot_messages", 0) >= 5


def stream_records(aws, stream):
    k = aws.client("kinesis")
    out = []
    for shard in k.list_shards(StreamName=stream)["Shards"]:
        it = k.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )
        out += k.get_records(ShardIterator=it["ShardIterator"])["Records"]
    return out


def test_failing_action_goes_to_the_error_action(local_aws):
    sqs = local_aws.client("sqs")
    queue_url = sqs.create_queue(QueueName=local_aws.name("rule-dlq"))["QueueUrl"]
    rule, root = local_aws.name("rule"), local_aws.name("t")
    create_rule(local_aws, rule, "no-such-stream", queue_url, sql=f"SELECT * FROM '{root}/#'")
    payload = b'{"deviceId": "dev1", "temperature": 20}'
    local_aws.client("iot-data").publish(topic=f"{root}/a/b", qos=0, payload=payload)
    msgs = wait_for(
        lambda: sqs.receive_message(QueueUrl=queue_url).get("Messages"), what="error record"
    )
    body = json.loads(msgs[0]["Body"])
    assert body["ruleName"] == rule and body["topic"] == f"{root}/a/b"
    assert base64.b64decode(body["base64OriginalPayload"]) == payload
    failure = body["failures"][0]
    assert (
        failure["failedAction"] == "KinesisAction" and failure["failedResource"] == "no-such-stream"
    )
    assert failure["errorMessage"]
    assert {"cloudwatchTraceId", "clientId"} <= set(body)


@pytest.mark.parametrize(
    ("sql", "action", "match"),
    [
        ("SELECT * FROM 'a' WHERE x IN (1)", "kinesis", "not supported"),
        ("SELECT get_dynamodb('t') FROM 'a'", "kinesis", "not supported"),
        ("SELECT * FROM 'a'", "lambda", "lambda"),
    ],
)
def test_unsupported_rules_are_refused_clearly(local_aws, sql, action, match):
    iot = local_aws.client("iot")
    params = {
        "kinesis": {"streamName": "s", "roleArn": "arn:aws:iam::123456789012:role/r"},
        "lambda": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:f"},
    }[action]
    with pytest.raises(iot.exceptions.InvalidRequestException, match=match):
        iot.create_topic_rule(
            ruleName=local_aws.name("bad"),
            topicRulePayload={
                "sql": sql,
                "awsIotSqlVersion": "2016-03-23",
                "actions": [{action: params}],
            },
        )


def rule_metric(aws, rule, name):
    """Sum of an AWS/IoT rule metric over the last half hour (any ActionType)."""
    import datetime as dt

    cw = aws.client("cloudwatch")
    now = dt.datetime.now(dt.UTC)
    metrics = cw.list_metrics(
        Namespace="AWS/IoT",
        MetricName=name,
        Dimensions=[{"Name": "RuleName", "Value": rule}],
    )["Metrics"]
    total = 0.0
    for m in {json.dumps(m["Dimensions"], sort_keys=True): m for m in metrics}.values():
        out = cw.get_metric_statistics(
            Namespace="AWS/IoT",
            MetricName=name,
            Dimensions=m["Dimensions"],
            StartTime=now - dt.timedelta(minutes=30),
            EndTime=now + dt.timedelta(minutes=2),
            Period=3600,
            Statistics=["Sum"],
        )
        total += sum(d["Sum"] for d in out["Datapoints"] if len(m["Dimensions"]))
    return total


NON_JSON = [b"not json at all", b"\x00\x01\xfe binary", b"80", b"[1, 2]", b'"text"']


def test_non_json_under_select_star_plus_is_a_parse_error_not_a_silent_drop(local_aws):
    """IoT Core: only SELECT * passes a non-JSON payload; other SQL fails to parse it."""
    k = local_aws.client("kinesis")
    stream = local_aws.name("st")
    k.create_stream(StreamName=stream, ShardCount=1)
    sqs = local_aws.client("sqs")
    queue_url = sqs.create_queue(QueueName=local_aws.name("rule-dlq"))["QueueUrl"]
    rule, root = local_aws.name("rule"), local_aws.name("t")
    create_rule(local_aws, rule, stream, queue_url, sql=RULE_SQL.replace("iot/sensors", root))
    before = local_aws.status()["counters"]
    data = local_aws.client("iot-data")
    for payload in NON_JSON:
        data.publish(topic=f"{root}/dev1/data", qos=1, payload=payload)
    data.publish(topic=f"{root}/dev1/data", qos=1, payload=b'{"deviceId": "dev1", "t": 1}')
    data.publish(topic=f"{root}/dev1/data", qos=1, payload=b"")  # empty: an empty object
    got = [json.loads(r["Data"]) for r in stream_records(local_aws, stream)]
    assert [m.get("deviceId") for m in got] == ["dev1", None]
    assert all("processing_time" in m for m in got)
    assert rule_metric(local_aws, rule, "ParseError") == len(NON_JSON)
    assert rule_metric(local_aws, rule, "TopicMatch") == len(NON_JSON) + 2
    assert rule_metric(local_aws, rule, "Failure") == 0
    # the errorAction is for failed actions (as documented), not for the rule's SQL
    assert sqs.receive_message(QueueUrl=queue_url).get("Messages") is None
    after = local_aws.status()["counters"]
    parse = after.get("iot_parse_errors", 0) - before.get("iot_parse_errors", 0)
    assert parse == len(NON_JSON)


def test_select_star_alone_passes_any_payload_unchanged(local_aws):
    k = local_aws.client("kinesis")
    stream = local_aws.name("st")
    k.create_stream(StreamName=stream, ShardCount=1)
    queue_url = local_aws.client("sqs").create_queue(QueueName=local_aws.name("q"))["QueueUrl"]
    rule, root = local_aws.name("rule"), local_aws.name("t")
    create_rule(local_aws, rule, stream, queue_url, sql=f"SELECT * FROM '{root}/#'")
    data = local_aws.client("iot-data")
    for payload in NON_JSON:
        data.publish(topic=f"{root}/x", qos=1, payload=payload)
    assert [r["Data"] for r in stream_records(local_aws, stream)] == NON_JSON
    assert rule_metric(local_aws, rule, "ParseError") == 0
    assert rule_metric(local_aws, rule, "Success") == len(NON_JSON)


def test_a_failed_action_is_a_failure_metric_by_action_type(local_aws):
    queue_url = local_aws.client("sqs").create_queue(QueueName=local_aws.name("q"))["QueueUrl"]
    rule, root = local_aws.name("rule"), local_aws.name("t")
    create_rule(local_aws, rule, "no-such-stream", queue_url, sql=f"SELECT * FROM '{root}/#'")
    for _ in range(2):
        local_aws.client("iot-data").publish(topic=f"{root}/a", qos=0, payload=b'{"a": 1}')
    assert rule_metric(local_aws, rule, "Failure") == 2
    dims = local_aws.client("cloudwatch").list_metrics(
        Namespace="AWS/IoT", MetricName="Failure", Dimensions=[{"Name": "RuleName", "Value": rule}]
    )["Metrics"][0]["Dimensions"]
    assert {d["Name"]: d["Value"] for d in dims} == {"RuleName": rule, "ActionType": "Kinesis"}
