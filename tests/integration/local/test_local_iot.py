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
