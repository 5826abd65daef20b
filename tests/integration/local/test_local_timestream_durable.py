"""Timestream rows through a real emulator: a clean stop/start and a kill -9 right after
an acknowledged WriteRecords keep every row (the tables come back from the control
snapshot, the rows from the DuckDB file)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from localaws_helpers import TEST_HANDLER, TRUST, aws, make_zip, wait_for

from iotpipe.local import lifecycle

pytestmark = pytest.mark.integration


def records(prefix: str, n: int) -> list[dict[str, str | list[dict[str, str]]]]:
    t = int(time.time() * 1000)
    return [
        {
            "Dimensions": [{"Name": "DeviceId", "Value": f"{prefix}{i}"}],
            "MeasureName": "temperature",
            "MeasureValue": str(i),
            "MeasureValueType": "DOUBLE",
            "Time": str(t),
        }
        for i in range(n)
    ]


def count(endpoint: str) -> int:
    out = aws(endpoint, "timestream-query").query(QueryString='SELECT count(*) FROM "db"."t"')
    return int(out["Rows"][0]["Data"][0]["ScalarValue"])


def test_rows_survive_stop_start_and_kill_9(tmp_path: Path) -> None:
    home = tmp_path / "home"
    info = lifecycle.start(home)
    try:
        tw = aws(info.endpoint, "timestream-write")
        tw.create_database(DatabaseName="db")
        tw.create_table(DatabaseName="db", TableName="t")
        first = records("a", 100)
        tw.write_records(DatabaseName="db", TableName="t", Records=first)
        lifecycle.stop(home)
        info = lifecycle.start(home)
        assert count(info.endpoint) == 100
        tw = aws(info.endpoint, "timestream-write")
        tw.write_records(DatabaseName="db", TableName="t", Records=records("b", 50))
        os.kill(info.pid, signal.SIGKILL)  # right after the success response
        wait_for(lambda: not lifecycle._alive(info.pid), 5, "the emulator to die")
        info = lifecycle.start(home)
        assert count(info.endpoint) == 150
        # identical rewrites after a restart (a reprocessed batch): still once each
        aws(info.endpoint, "timestream-write").write_records(
            DatabaseName="db", TableName="t", Records=first
        )
        assert count(info.endpoint) == 150
    finally:
        lifecycle.stop(home)


def test_mapping_resumes_from_its_checkpoint_after_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    info = lifecycle.start(home)
    try:
        ep = info.endpoint
        aws(ep, "kinesis").create_stream(StreamName="s", ShardCount=1)
        arn = aws(ep, "kinesis").describe_stream_summary(StreamName="s")[
            "StreamDescriptionSummary"
        ]["StreamARN"]
        tw = aws(ep, "timestream-write")
        tw.create_database(DatabaseName="db")
        tw.create_table(DatabaseName="db", TableName="t")
        role = aws(ep, "iam").create_role(RoleName="r", AssumeRolePolicyDocument=TRUST)
        aws(ep, "lambda").create_function(
            FunctionName="fn",
            Runtime="python3.13",
            Role=role["Role"]["Arn"],
            Handler="fn.handler",
            Code={"ZipFile": make_zip({"fn.py": TEST_HANDLER})},
            Environment={"Variables": {"TIMESTREAM_DATABASE": "db", "TIMESTREAM_TABLE": "t"}},
        )
        aws(ep, "lambda").create_event_source_mapping(
            FunctionName="fn",
            EventSourceArn=arn,
            StartingPosition="TRIM_HORIZON",
            BatchSize=10,
            MaximumBatchingWindowInSeconds=0,
        )
        put(ep, 0, 30)
        wait_for(lambda: count(ep) == 30, 30, "30 rows")
        lifecycle.stop(home)
        info = lifecycle.start(home)
        ep = info.endpoint
        put(ep, 30, 10)
        wait_for(lambda: count(ep) == 40, 30, "40 rows")
        time.sleep(1.0)  # a replay from TRIM_HORIZON would show up as more invocations
        invocations = (lifecycle.status(home) or {})["counts"]["invocations"]
        assert invocations == 1  # the 10 new records; none of the 30 processed before
        assert count(ep) == 40
    finally:
        lifecycle.stop(home)


def put(endpoint: str, first: int, n: int) -> None:
    t = int(time.time() * 1000)
    aws(endpoint, "kinesis").put_records(
        StreamName="s",
        Records=[
            {"Data": json.dumps({"id": f"d{i}", "t": t + i}).encode(), "PartitionKey": f"d{i}"}
            for i in range(first, first + n)
        ],
    )
