"""The lake branch end to end on the embedded AWS, driven as a user drives it.

`iotpipe up` with both stores on, messages by both routes (`send-test --via kinesis` and
`--via iot`), then what a user checks: Athena counts every valid message exactly once, the
invalid ones sit under the error prefix and `query quality --store lake` names their
reasons, one hour scans fewer bytes than the whole table (partition pruning), and a
lake-only deployment (`timestream.enabled: false`) creates no Timestream resource and
answers every preset. The Athena calls are plain boto3, as a user's script makes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_process import run_iotpipe, user_env
from localaws_helpers import aws, wait_for

from iotpipe.local import lifecycle

pytestmark = pytest.mark.integration

BOTH = """\
name: lakee2e
target: local
event_source:
  batching_window_s: 0
lake:
  enabled: true
  buffer_s: 1
"""
LAKE_ONLY = """\
name: lakeonly
target: local
timestream:
  enabled: false
lake:
  enabled: true
  buffer_s: 1
"""


class Deployed:
    def __init__(self, work: Path, env: dict[str, str], up: dict[str, Any]) -> None:
        self.work, self.env, self.up = work, env, up
        state = lifecycle.read_state(Path(env["IOTPIPE_HOME"]))
        assert state is not None
        self.endpoint = state["endpoint"]
        self.outputs: dict[str, dict[str, Any]] = up["resources"]

    def cli(self, *args: str, timeout: float = 120.0) -> Any:
        done = run_iotpipe(self.work, self.env, *args, timeout=timeout)
        assert done.returncode == 0, done.stderr
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "-o", "json").stdout)

    def athena(self, sql: str) -> tuple[list[list[str | None]], int]:
        """Rows (header skipped) and bytes scanned, through plain boto3."""
        client = aws(self.endpoint, "athena")
        wg = self.outputs["workgroup"]["name"]
        qid = client.start_query_execution(QueryString=sql, WorkGroup=wg)["QueryExecutionId"]
        state = wait_for(
            lambda: _finished(client, qid), timeout=30, what=f"Athena query {qid} to finish"
        )
        assert state["Status"]["State"] == "SUCCEEDED", state["Status"]
        rows: list[list[str | None]] = []
        for page in client.get_paginator("get_query_results").paginate(QueryExecutionId=qid):
            rows += [[c.get("VarCharValue") for c in r["Data"]] for r in page["ResultSet"]["Rows"]]
        return rows[1:], int(state["Statistics"]["DataScannedInBytes"])


def _finished(client: Any, qid: str) -> dict[str, Any] | None:
    execution = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
    return (
        execution if execution["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None
    )


def _deploy(tmp_path_factory: pytest.TempPathFactory, name: str, config: str) -> Iterator[Deployed]:
    work = tmp_path_factory.mktemp(name)
    (work / "iotpipe.yaml").write_text(config)
    env = user_env(work / ".iotpipe")
    try:
        up = run_iotpipe(work, env, "up", "-o", "json", timeout=240)
        assert up.returncode == 0, up.stderr
        yield Deployed(work, env, json.loads(up.stdout))
    finally:
        lifecycle.stop(work / ".iotpipe")


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    yield from _deploy(tmp_path_factory, "lake-both", BOTH)


@pytest.fixture(scope="module")
def lake_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    yield from _deploy(tmp_path_factory, "lake-only", LAKE_ONLY)


def _table(dep: Deployed) -> str:
    catalog = dep.outputs["lake_catalog"]
    return f'"{catalog["database"]}"."{catalog["table"]}"'


def test_both_routes_reach_athena_exactly_once_and_the_invalid_ones_the_error_prefix(both):
    sent = [
        both.json("send-test", "-n", "300", "--seed", "1", "--invalid-ratio", "0.1"),
        both.json("send-test", "-n", "100", "--seed", "2", "--invalid-ratio", "0", "--via", "iot"),
    ]
    valid = sum(s["sent"] - s["invalid_injected"] for s in sent)
    invalid = sum(s["invalid_injected"] for s in sent)
    assert all(s["failed"] == 0 for s in sent) and invalid > 0
    table = _table(both)

    def counted() -> int | None:
        rows, _ = both.athena(f"SELECT count(*) FROM {table}")
        n = int(rows[0][0] or 0)
        return n if n >= valid else None

    assert wait_for(counted, timeout=60, what=f"{valid} rows in Athena") == valid
    distinct, _ = both.athena(
        f"SELECT count(*) FROM (SELECT DISTINCT device_id, time FROM {table})"
    )
    assert int(distinct[0][0] or 0) == valid  # exactly once: no row twice

    s3 = aws(both.endpoint, "s3")
    bucket = both.outputs["lake_bucket"]["name"]
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="errors/processing-failed/"
        )
        for o in page.get("Contents", [])
    ]
    lines = [
        json.loads(line)
        for key in keys
        for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()
        if line.strip()
    ]
    assert len(lines) == invalid  # recipe's invalid001 is counted among invalid_injected
    assert all(rec["rawData"] and rec["errorCode"] for rec in lines)

    quality = both.json("query", "quality", "--store", "lake", "--since", "1h")
    assert sum(int(r["count"]) for r in quality) == invalid


def test_one_hour_scans_fewer_bytes_than_the_whole_table(both):
    table = _table(both)
    # Three hours ago and now: two partitions, written through the pipeline.
    old = datetime.now(UTC) - timedelta(hours=3)
    kinesis = aws(both.endpoint, "kinesis")
    for n in range(5):
        body = {"deviceId": "sensor001", "timestamp": old.isoformat(), "temperature": 20.0 + n}
        kinesis.put_record(
            StreamName=both.outputs["stream"]["name"], PartitionKey="p", Data=json.dumps(body)
        )
    dt, hour = old.strftime("%Y-%m-%d"), old.hour
    where = f"dt = '{dt}' AND hour = {hour}"
    wait_for(
        lambda: both.athena(f"SELECT count(*) FROM {table} WHERE {where}")[0][0][0] == "5",
        timeout=60,
        what="the old hour's rows",
    )
    _, hour_bytes = both.athena(f"SELECT count(*) FROM {table} WHERE {where}")
    _, none_bytes = both.athena(f"SELECT count(*) FROM {table} WHERE dt = '1999-01-01'")
    _, all_bytes = both.athena(f"SELECT count(*) FROM {table}")
    assert none_bytes == 0 < hour_bytes < all_bytes


def test_verify_checks_the_lake_and_the_probe_reaches_an_athena_row(both):
    report = both.json("verify", "--probe")
    checks = {c["name"]: c for c in report["checks"]}
    assert all(c["ok"] for c in checks.values()), [c for c in checks.values() if not c["ok"]]
    assert any("lake" in name.lower() or "athena" in name.lower() for name in checks)


def test_a_lake_only_deployment_has_no_timestream_and_answers_every_preset(lake_only):
    keys = set(lake_only.outputs)
    assert "timestream" not in keys and "function" not in keys and "delivery_stream" in keys
    databases = aws(lake_only.endpoint, "timestream-write").list_databases()["Databases"]
    assert databases == []
    sent = lake_only.json("send-test", "-n", "60", "--invalid-ratio", "0", "--seed", "4")
    table = _table(lake_only)
    wait_for(
        lambda: (
            int(lake_only.athena(f"SELECT count(*) FROM {table}")[0][0][0] or 0) >= sent["sent"]
        ),
        timeout=60,
        what="the lake-only rows",
    )
    for preset in ("recent", "by-device", "per-minute", "quality"):
        rows = lake_only.json("query", preset, "--since", "1h")
        assert isinstance(rows, list), preset
        if preset != "quality":
            assert rows, preset


def test_down_without_state_finds_and_empties_the_lake(lake_only):
    states = list((lake_only.work / ".iotpipe").glob("lakeonly*.json"))
    assert states
    for state in states:
        state.unlink()
    lake_only.cli("down", "--yes", timeout=180)
    s3 = aws(lake_only.endpoint, "s3")
    assert s3.list_buckets()["Buckets"] == []
    assert aws(lake_only.endpoint, "firehose").list_delivery_streams()["DeliveryStreamNames"] == []
    assert aws(lake_only.endpoint, "glue").get_databases()["DatabaseList"] == []
