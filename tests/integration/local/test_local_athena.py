"""Athena over HTTP, as a user's boto3 script drives it: a bucket of Parquet under
``data/dt=.../hour=.../``, a Glue table with partition projection (the lake contract), a
workgroup with an output location; then StartQueryExecution, GetQueryExecution,
GetQueryResults and StopQueryExecution answered by the embedded AWS for real."""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pytest

from iotpipe import lakeschema
from iotpipe.poll import Backoff, until

pytestmark = pytest.mark.integration
TODAY = dt.datetime.now(dt.UTC).date()
DAYS = (TODAY - dt.timedelta(days=1), TODAY)
HOURS = (7, 8)


def rows_in(day: dt.date, hour: int) -> int:
    """Each partition holds a different number of rows, so counts prove which were read."""
    return 6 + hour + (3 if day == TODAY else 0)


@dataclass
class Lake:
    client: Callable[[str], Any]
    bucket: str
    database: str
    workgroup: str
    sizes: dict[tuple[dt.date, int], int] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return f'"{self.database}"."telemetry"'

    def start(self, query: str, **kwargs: Any) -> str:
        kwargs.setdefault("WorkGroup", self.workgroup)
        return self.client("athena").start_query_execution(QueryString=query, **kwargs)[
            "QueryExecutionId"
        ]

    def wait(self, qid: str, timeout: float = 30) -> dict[str, Any]:
        athena = self.client("athena")

        def probe() -> dict[str, Any]:
            return athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]

        return until(
            probe,
            timeout=timeout,
            backoff=Backoff(first=0.05, factor=1.5, cap=0.5),
            done=lambda e: (
                e is not None and e["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED")
            ),
        )

    def run(self, query: str, **kwargs: Any) -> dict[str, Any]:
        return self.wait(self.start(query, **kwargs))

    def rows(self, qid: str, page_size: int = 1000) -> list[list[str | None]]:
        pages = self.client("athena").get_paginator("get_query_results")
        out = []
        for page in pages.paginate(QueryExecutionId=qid, PaginationConfig={"PageSize": page_size}):
            out += [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
        return out


def build_lake(client: Callable[[str], Any], name: str, tmp: Path) -> Lake:
    """Two days x two hours of Parquet, a projected Glue table, a workgroup (the contract)."""
    s3, glue, athena = client("s3"), client("glue"), client("athena")
    lake = Lake(client, f"{name}-lake", f"{name}_lake", f"{name}-athena")
    s3.create_bucket(Bucket=lake.bucket)
    glue.create_database(DatabaseInput={"Name": lake.database})
    columns = [("time", "timestamp"), ("device_id", "string"), ("temperature", "double")]
    glue.create_table(
        DatabaseName=lake.database,
        TableInput={
            "Name": "telemetry",
            "TableType": "EXTERNAL_TABLE",
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in lakeschema.PARTITION_KEYS],
            "StorageDescriptor": {
                "Columns": [{"Name": n, "Type": t} for n, t in columns],
                "Location": lakeschema.data_location(lake.bucket),
                "InputFormat": lakeschema.PARQUET_INPUT,
                "OutputFormat": lakeschema.PARQUET_OUTPUT,
                "SerdeInfo": {"SerializationLibrary": lakeschema.PARQUET_SERDE},
            },
            "Parameters": {"classification": "parquet", **lakeschema.projection(lake.bucket, 30)},
        },
    )
    db = duckdb.connect()
    for day in DAYS:
        for hour in HOURS:
            path = tmp / f"{day}-{hour}.parquet"
            db.execute(
                f"COPY (SELECT TIMESTAMP '{day} {hour:02d}:00:00.123' + INTERVAL (i) SECOND AS time,"
                f" 'dev-' || (i % 3) AS device_id, 20.0 + i AS temperature"
                f" FROM range({rows_in(day, hour)}) t(i)) TO '{path}' (FORMAT parquet, COMPRESSION snappy)"
            )
            key = f"data/dt={day}/hour={hour:02d}/part-{hour}.parquet"
            s3.put_object(Bucket=lake.bucket, Key=key, Body=path.read_bytes())
            lake.sizes[(day, hour)] = path.stat().st_size
    athena.create_work_group(
        Name=lake.workgroup,
        Configuration={
            "ResultConfiguration": {"OutputLocation": lakeschema.results_location(lake.bucket)},
            "EnforceWorkGroupConfiguration": True,
            "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},
        },
    )
    return lake


@pytest.fixture(scope="module")
def lake(local_aws, tmp_path_factory) -> Lake:
    return build_lake(local_aws.client, local_aws.name("ath"), tmp_path_factory.mktemp("lake"))


def test_a_grouped_query_answers_exact_counts_with_a_header_row_and_athenas_types(lake):
    query = (
        "SELECT device_id, count(*) AS readings, avg(temperature) AS mean, min(time) AS first_seen "
        f"FROM {lake.table} WHERE dt = '{TODAY}' GROUP BY device_id ORDER BY device_id"
    )
    ex = lake.run(query, ResultConfiguration={"OutputLocation": "s3://elsewhere/ignored/"})
    assert ex["Status"]["State"] == "SUCCEEDED", ex["Status"]
    qid = ex["QueryExecutionId"]
    result = lake.client("athena").get_query_results(QueryExecutionId=qid)
    rows = [[d.get("VarCharValue") for d in r["Data"]] for r in result["ResultSet"]["Rows"]]
    n7, n8 = rows_in(TODAY, 7), rows_in(TODAY, 8)  # 16 and 17 rows, devices i % 3
    per_device = [
        len([i for i in range(n7) if i % 3 == d]) + len([i for i in range(n8) if i % 3 == d])
        for d in range(3)
    ]
    assert rows[0] == ["device_id", "readings", "mean", "first_seen"]
    assert [r[:2] for r in rows[1:]] == [[f"dev-{d}", str(per_device[d])] for d in range(3)]
    assert rows[1][3] == f"{TODAY} 07:00:00.123"
    info = result["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
    assert [(c["Name"], c["Type"]) for c in info] == [
        ("device_id", "varchar"),
        ("readings", "bigint"),
        ("mean", "double"),
        ("first_seen", "timestamp"),
    ]
    # The workgroup enforces its output location: <id>.csv there, header + rows, quoted.
    location = f"s3://{lake.bucket}/athena-results/{qid}.csv"
    assert ex["ResultConfiguration"]["OutputLocation"] == location
    s3 = lake.client("s3")
    body = s3.get_object(Bucket=lake.bucket, Key=f"athena-results/{qid}.csv")["Body"].read()
    assert list(csv.reader(io.StringIO(body.decode()))) == rows
    assert body.startswith(b'"device_id","readings","mean","first_seen"\n"dev-0",')
    s3.head_object(Bucket=lake.bucket, Key=f"athena-results/{qid}.csv.metadata")
    assert ex["Statistics"]["DataScannedInBytes"] == lake.sizes[(TODAY, 7)] + lake.sizes[(TODAY, 8)]
    assert ex["StatementType"] == "DML" and ex["WorkGroup"] == lake.workgroup


def test_pages_of_two_rows_the_header_only_on_the_first(lake):
    qid = lake.run(f"SELECT hour, count(*) AS n FROM {lake.table} GROUP BY hour ORDER BY hour")[
        "QueryExecutionId"
    ]
    athena = lake.client("athena")
    first = athena.get_query_results(QueryExecutionId=qid, MaxResults=2)
    assert [[d["VarCharValue"] for d in r["Data"]] for r in first["ResultSet"]["Rows"]] == [
        ["hour", "n"],
        ["7", str(sum(rows_in(d, 7) for d in DAYS))],
    ]
    second = athena.get_query_results(
        QueryExecutionId=qid, MaxResults=2, NextToken=first["NextToken"]
    )
    assert [[d["VarCharValue"] for d in r["Data"]] for r in second["ResultSet"]["Rows"]] == [
        ["8", str(sum(rows_in(d, 8) for d in DAYS))]
    ]
    assert "NextToken" not in second
    assert lake.rows(qid, page_size=1) == lake.rows(qid)  # the boto3 paginator agrees
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.get_query_results(QueryExecutionId=qid, MaxResults=1001)


def test_partition_pruning_one_hour_scans_less_than_a_day_and_a_day_less_than_all(lake):
    hour = lake.run(f"SELECT count(*) FROM {lake.table} WHERE dt = '{TODAY}' AND hour = 8")
    day = lake.run(f"SELECT count(*) FROM {lake.table} WHERE dt = '{TODAY}'")
    everything = lake.run(f"SELECT count(*) FROM {lake.table}")
    scanned = [e["Statistics"]["DataScannedInBytes"] for e in (hour, day, everything)]
    assert scanned == [
        lake.sizes[(TODAY, 8)],
        lake.sizes[(TODAY, 7)] + lake.sizes[(TODAY, 8)],
        sum(lake.sizes.values()),
    ]
    assert lake.rows(hour["QueryExecutionId"])[1] == [str(rows_in(TODAY, 8))]
    assert lake.rows(everything["QueryExecutionId"])[1] == [
        str(sum(rows_in(d, h) for d in DAYS for h in HOURS))
    ]


def test_the_trino_functions_the_read_side_uses(lake):
    query = (
        "SELECT date_trunc('hour', max(time)) AS h, approx_percentile(temperature, 0.5) AS p50, "
        "to_iso8601(min(time)) AS iso, count_if(time > from_iso8601_timestamp('2000-01-01T00:00:00Z')) AS n, "
        "max(time) < now() + INTERVAL '1' DAY AS past, CAST(min(temperature) AS bigint) AS t0, "
        "min(time) >= TIMESTAMP '2000-01-01 00:00:00' AS sane, current_timestamp > now() - INTERVAL '1' HOUR AS ok "
        f"FROM telemetry WHERE dt = '{TODAY}' AND hour BETWEEN 7 AND 7"
    )
    ex = lake.run(query, QueryExecutionContext={"Database": lake.database})
    assert ex["Status"]["State"] == "SUCCEEDED", ex["Status"]
    header, row = lake.rows(ex["QueryExecutionId"])
    n = rows_in(TODAY, 7)
    assert header == ["h", "p50", "iso", "n", "past", "t0", "sane", "ok"]
    assert row[0] == f"{TODAY} 07:00:00.000" and row[2] == f"{TODAY}T07:00:00.123"
    assert float(row[1]) == pytest.approx(20 + (n - 1) / 2, abs=1)
    assert row[3:] == [str(n), "true", "20", "true", "true"]


def test_execution_parameters_fill_the_placeholders(lake):
    ex = lake.run(
        f"SELECT count(*) AS n FROM {lake.table} WHERE dt = ? AND hour = ?",
        ExecutionParameters=[f"'{TODAY}'", "8"],
    )
    assert ex["Status"]["State"] == "SUCCEEDED", ex["Status"]
    assert ex["ExecutionParameters"] == [f"'{TODAY}'", "8"]
    assert ex["Statistics"]["DataScannedInBytes"] == lake.sizes[(TODAY, 8)]
    assert lake.rows(ex["QueryExecutionId"]) == [["n"], [str(rows_in(TODAY, 8))]]


def test_a_syntax_error_fails_the_query_with_athenas_reason(lake):
    ex = lake.run(f"SELECT * FORM {lake.table}")
    assert ex["Status"]["State"] == "FAILED"
    assert ex["Status"]["StateChangeReason"].startswith("SYNTAX_ERROR: line 1:")
    assert ex["Status"]["AthenaError"]["ErrorCategory"] == 2
    athena = lake.client("athena")
    with pytest.raises(athena.exceptions.InvalidRequestException, match="FAILED"):
        athena.get_query_results(QueryExecutionId=ex["QueryExecutionId"])
    missing = lake.run(f"SELECT nope FROM {lake.table}")
    assert (
        "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved"
        in missing["Status"]["StateChangeReason"]
    )


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO {t} SELECT * FROM {t}",
        "DROP TABLE {t}",
        "CREATE TABLE x AS SELECT * FROM {t}",
        "COPY (SELECT 1) TO '/tmp/athena-escape.csv'",
        "SELECT * FROM read_parquet('{home}/*')",
        "SELECT * FROM read_csv('/etc/passwd')",
    ],
)
def test_only_read_only_selects_run_and_the_lake_is_intact(lake, local_aws, statement):
    ex = lake.run(statement.format(t=lake.table, home=local_aws.home))
    assert ex["Status"]["State"] == "FAILED"
    assert ex["Status"]["StateChangeReason"].split(":")[0] in (
        "NOT_SUPPORTED",
        "FUNCTION_NOT_FOUND",
    )
    assert not Path("/tmp/athena-escape.csv").exists()
    count = lake.run(f"SELECT count(*) FROM {lake.table}")
    assert lake.rows(count["QueryExecutionId"])[1] == [
        str(sum(rows_in(d, h) for d in DAYS for h in HOURS))
    ]


def test_the_workgroups_bytes_scanned_cutoff_cancels_a_query_that_reads_too_much(lake, tmp_path):
    """Two partitions of 6 MB (random doubles do not compress) under a 10 MB cutoff
    (botocore's minimum): one partition runs, both are cancelled before reading."""
    s3, glue, athena = (lake.client(s) for s in ("s3", "glue", "athena"))
    location = f"s3://{lake.bucket}/big/"
    params = {
        **lakeschema.projection(lake.bucket, 30),
        "storage.location.template": location + "dt=${dt}/hour=${hour}/",
    }
    glue.create_table(
        DatabaseName=lake.database,
        TableInput={
            "Name": "big",
            "PartitionKeys": [{"Name": n, "Type": t} for n, t in lakeschema.PARTITION_KEYS],
            "StorageDescriptor": {
                "Columns": [{"Name": "v", "Type": "double"}],
                "Location": location,
            },
            "Parameters": params,
        },
    )
    path = tmp_path / "big.parquet"
    for hour in HOURS:
        duckdb.connect().execute(
            f"COPY (SELECT random() AS v FROM range(800000)) TO '{path}' (FORMAT parquet, COMPRESSION snappy)"
        )
        s3.put_object(
            Bucket=lake.bucket,
            Key=f"big/dt={TODAY}/hour={hour:02d}/p.parquet",
            Body=path.read_bytes(),
        )
    assert 6_000_000 < path.stat().st_size < 10_000_000
    capped = lake.workgroup + "-capped"
    athena.create_work_group(
        Name=capped,
        Configuration={
            "ResultConfiguration": {"OutputLocation": lakeschema.results_location(lake.bucket)},
            "BytesScannedCutoffPerQuery": 10_000_000,
        },
    )
    big = f'"{lake.database}"."big"'
    wide = lake.run(f"SELECT count(*) FROM {big} WHERE dt = '{TODAY}'", WorkGroup=capped)
    assert wide["Status"]["State"] == "CANCELLED"
    assert wide["Status"]["StateChangeReason"].startswith("Bytes scanned limit was exceeded")
    narrow = lake.run(
        f"SELECT count(*) FROM {big} WHERE dt = '{TODAY}' AND hour = 7", WorkGroup=capped
    )
    assert narrow["Status"]["State"] == "SUCCEEDED"
    assert lake.rows(narrow["QueryExecutionId"])[1] == ["800000"]


def test_a_query_needs_an_output_location_and_a_known_workgroup(lake):
    athena = lake.client("athena")
    with pytest.raises(athena.exceptions.InvalidRequestException, match="No output location"):
        athena.start_query_execution(QueryString="SELECT 1", WorkGroup="primary")
    with pytest.raises(athena.exceptions.InvalidRequestException, match="not found"):
        athena.get_query_execution(QueryExecutionId="00000000-0000-0000-0000-000000000000")
    ex = lake.run(
        "SELECT 1 AS one",
        WorkGroup="primary",
        ResultConfiguration={"OutputLocation": f"s3://{lake.bucket}/adhoc"},
    )
    assert (
        ex["ResultConfiguration"]["OutputLocation"]
        == f"s3://{lake.bucket}/adhoc/{ex['QueryExecutionId']}.csv"
    )


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """An emulator of its own whose Athena queries time out after 2 s."""
    import boto3

    from iotpipe.local import lifecycle

    home = tmp_path_factory.mktemp("iotpipe-athena-quick")
    mp = pytest.MonkeyPatch()
    mp.setenv("IOTPIPE_LOCAL_ATHENA_TIMEOUT_S", "2")
    try:
        info = lifecycle.start(home, port=0)
    finally:
        mp.undo()

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=info.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    try:
        yield build_lake(client, "quick", tmp_path_factory.mktemp("quick-lake"))
    finally:
        lifecycle.stop(home)


def slow(t: str) -> str:
    joins = ", ".join(f"{t} {a}" for a in "abcdef")
    return f"SELECT sum(a.temperature * b.temperature * c.temperature * d.temperature) FROM {joins}"


def test_results_before_the_end_stop_and_the_time_limit(quick):
    athena = quick.client("athena")
    qid = quick.start(slow(quick.table))
    with pytest.raises(
        athena.exceptions.InvalidRequestException,
        match=r"Query has not yet finished\. Current state: (QUEUED|RUNNING)",
    ):
        athena.get_query_results(QueryExecutionId=qid)
    athena.stop_query_execution(QueryExecutionId=qid)
    stopped = quick.wait(qid, timeout=10)
    assert stopped["Status"]["State"] == "CANCELLED"
    started = time.monotonic()
    timed_out = quick.run(slow(quick.table))
    assert timed_out["Status"]["State"] == "FAILED"
    assert timed_out["Status"]["StateChangeReason"].startswith("Query timeout")
    assert time.monotonic() - started < 15
    fast = quick.run(f"SELECT count(*) FROM {quick.table}")  # the engine still answers
    assert quick.rows(fast["QueryExecutionId"])[1] == [
        str(sum(rows_in(d, h) for d in DAYS for h in HOURS))
    ]
