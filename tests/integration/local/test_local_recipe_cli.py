"""The recipe's own AWS CLI checks, against a pipeline `iotpipe up` made on the embedded AWS.

Each step sends what the AWS CLI sends for the recipe's command (the same botocore
serializers, the local credentials, the emulator's endpoint); values the recipe passes
through the shell (``$SHARD_ITERATOR``, unquoted) go through bash as the recipe writes
them. The recipe's layout is one measure per record (``record_model: single``), so its
queries run verbatim.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest
from cli_process import run_iotpipe, user_env
from localaws_helpers import aws, wait_for

from iotpipe.local import lifecycle

pytestmark = pytest.mark.integration

CONFIG = """\
name: recipe
target: local
timestream:
  record_model: single
event_source:
  batching_window_s: 0
"""


def shell(script: str, **env: str) -> str:
    """What bash prints for `script` with these variables (word splitting included)."""
    out = subprocess.run(
        ["bash", "-c", script],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout


def now_iso() -> str:
    """$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("recipe")
    (work / "iotpipe.yaml").write_text(CONFIG)
    home = work / ".iotpipe"
    env = user_env(home)
    try:
        up = run_iotpipe(work, env, "up", "-o", "json", timeout=180)
        assert up.returncode == 0, up.stderr
        state = lifecycle.read_state(home)
        assert state is not None
        yield state["endpoint"], json.loads(up.stdout)["resources"]
    finally:
        lifecycle.stop(home)


def reading(device: str, **values: Any) -> bytes:
    return json.dumps({"timestamp": now_iso(), "deviceId": device, **values}).encode()


def send_recipe_data(endpoint: str, stream: str) -> None:
    """Step 9: the recipe's put-record and put-records; and a device's iot-data publish."""
    kinesis = aws(endpoint, "kinesis")
    kinesis.put_record(
        StreamName=stream,
        PartitionKey="sensor001",
        Data=reading("sensor001", temperature=26.3, humidity=60.1, location="factory_floor_1"),
    )
    batch = [
        ("sensor002", 22.8, 55.3, "factory_floor_2"),
        ("sensor003", 28.1, 62.7, "warehouse"),
    ]
    out = kinesis.put_records(
        StreamName=stream,
        Records=[
            {"PartitionKey": d, "Data": reading(d, temperature=t, humidity=h, location=loc)}
            for d, t, h, loc in batch
        ],
    )
    assert out["FailedRecordCount"] == 0
    aws(endpoint, "iot-data").publish(
        topic="iot/sensors/sensor001/data",
        qos=1,
        payload=reading("sensor001", temperature=27.0, humidity=61.0),
    )


def check_shard_iterator(endpoint: str, stream: str) -> None:
    """Validation 1: SHARD_ITERATOR=$(aws ... --output text); get-records --shard-iterator
    $SHARD_ITERATOR, unquoted. A 56-digit sequence number made moto's iterator wrap."""
    kinesis = aws(endpoint, "kinesis")
    summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE"
    shard0 = {"StreamName": stream, "ExplicitHashKey": "0"}  # shardId-000000000000
    kinesis.put_record(PartitionKey="sensor001", Data=b'{"first": 1}', **shard0)
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="LATEST"
    )["ShardIterator"]
    captured = shell(
        'SHARD_ITERATOR=$(printf "%s\\n" "$OUT"); set -- $SHARD_ITERATOR; '
        'printf "%s\\n%s" "$#" "$1"',
        OUT=iterator,
    )
    words, passed = captured.split("\n", 1)
    assert (words, passed) == ("1", iterator)  # one word, unchanged: no newline, no glob
    assert kinesis.get_records(ShardIterator=passed)["Records"] == []  # LATEST: nothing new
    kinesis.put_record(PartitionKey="sensor001", Data=b'{"next": 2}', **shard0)
    got = kinesis.get_records(ShardIterator=passed)
    assert [r["Data"] for r in got["Records"]] == [b'{"next": 2}']
    following = shell("printf %s $IT", IT=got["NextShardIterator"])
    assert following == got["NextShardIterator"]
    assert kinesis.get_records(ShardIterator=following)["Records"] == []


def check_queries(endpoint: str, db: str, table: str) -> None:
    """Validation 3: the recipe's two queries, verbatim."""
    tq = aws(endpoint, "timestream-query")
    recent = f'SELECT * FROM "{db}"."{table}" WHERE time > ago(1h) ORDER BY time DESC LIMIT 10'
    averages = (
        f'SELECT DeviceId, avg(measure_value::double) as avg_temperature FROM "{db}".'
        f"\"{table}\" WHERE measure_name = 'temperature' AND time > ago(1h) GROUP BY DeviceId"
    )

    def by_device() -> dict[str, float]:
        try:
            page = tq.query(QueryString=averages)
        except tq.exceptions.ValidationException:  # no row yet: no DeviceId column yet
            return {}
        return {
            r["Data"][0]["ScalarValue"]: float(r["Data"][1]["ScalarValue"]) for r in page["Rows"]
        }

    expected = {"sensor001": pytest.approx(26.65), "sensor002": 22.8, "sensor003": 28.1}
    wait_for(lambda: by_device() == expected, 60, "the recipe's four readings in Timestream")
    rows = tq.query(QueryString=recent)
    assert 0 < len(rows["Rows"]) <= 10 and "time" in [c["Name"] for c in rows["ColumnInfo"]]


def check_logs(endpoint: str, stream: str, fn: str) -> None:
    """Validation 4 (invalid data filtered out, the logs say so), then validation 2."""
    aws(endpoint, "kinesis").put_record(
        StreamName=stream,
        PartitionKey="invalid001",
        Data=reading("invalid001", temperature=999, humidity=150),
    )
    logs, group = aws(endpoint, "logs"), f"/aws/lambda/{fn}"

    def filtered() -> list[dict[str, Any]]:
        pattern = '"Temperature out of range"'
        return logs.filter_log_events(logGroupName=group, filterPattern=pattern)["events"]

    events = wait_for(filtered, 60, "the recipe's 'Temperature out of range' log line")
    assert all("Temperature out of range" in e["message"] for e in events)
    groups = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [group]
    streams = logs.describe_log_streams(
        logGroupName=group, orderBy="LastEventTime", descending=True
    )["logStreams"]
    assert streams


def test_recipe_cli_steps(deployed: tuple[str, dict[str, Any]]) -> None:
    endpoint, res = deployed
    stream = res["stream"]["name"]
    # Preparation: aws sts get-caller-identity --query Account --output text
    assert aws(endpoint, "sts").get_caller_identity()["Account"].isdigit()
    send_recipe_data(endpoint, stream)
    check_shard_iterator(endpoint, stream)
    check_queries(endpoint, res["timestream"]["database"], res["timestream"]["table"])
    check_logs(endpoint, stream, res["function"]["name"])
