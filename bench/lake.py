"""Benchmark of the lake branch (prints figures side by side; not a timed test).

    python bench/lake.py [--rows 1000000] [--samples 5] [--messages 20000]

In one run, each figure next to its baseline:
1. put -> Athena-queryable latency on the embedded AWS with ``buffer_s: 1`` (target
   <= buffer + 2 s), beside put -> Timestream-queryable in the same deployment;
2. transform CPU per message beside the Kinesis handler's, same messages (target <= 1.2x);
3. Parquet bytes per reading beside the JSON the transform emits (target <= 0.25x);
4. a grouped Athena query over ``--rows`` rows on the embedded AWS (target <= 1 s) beside
   the same query in DuckDB on the same files, and the bytes Athena reports scanned for
   one hour versus all;
5. a modelled monthly cost at 1,000 messages/s of the lake branch beside the Timestream
   branch (``bench/lakecost.py``: prices and assumptions printed with it).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import boto3  # noqa: E402
import duckdb  # noqa: E402
import lakecost  # noqa: E402
from handler import NOW, bench_settings, iotpipe_invoker, synthesize  # noqa: E402

from iotpipe import lakeschema  # noqa: E402
from iotpipe.config import Config, LakeConfig  # noqa: E402
from iotpipe.local import lifecycle, parquet  # noqa: E402
from lambda_handler import transform  # noqa: E402

CONFIG = """\
name: lakebench
target: local
event_source:
  batching_window_s: 0
lake:
  enabled: true
  buffer_s: 1
"""


def client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def deploy(work: Path) -> tuple[str, dict[str, Any]]:
    (work / "iotpipe.yaml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IOTPIPE_"))}
    env["IOTPIPE_HOME"] = str(work / ".iotpipe")
    done = subprocess.run(
        [sys.executable, "-m", "iotpipe", "up", "-o", "json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    state = lifecycle.read_state(work / ".iotpipe")
    assert state is not None
    return state["endpoint"], json.loads(done.stdout)["resources"]


def athena(endpoint: str, workgroup: str, sql: str) -> tuple[list[list[Any]], dict[str, Any]]:
    """Rows (no header) and the execution, polling every 5 ms (the figure is the query's)."""
    ath = client(endpoint, "athena")
    qid = ath.start_query_execution(QueryString=sql, WorkGroup=workgroup)["QueryExecutionId"]
    while True:
        ex = ath.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        if ex["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.005)
    if ex["Status"]["State"] != "SUCCEEDED":
        raise SystemExit(f"bench: Athena query failed: {ex['Status']}")
    rows = ath.get_query_results(QueryExecutionId=qid, MaxResults=1000)["ResultSet"]["Rows"]
    return [[c.get("VarCharValue") for c in r["Data"]] for r in rows[1:]], ex


def latency(endpoint: str, out: dict[str, Any], samples: int) -> tuple[list[float], list[float]]:
    """Seconds from PutRecord to the row being queryable, in Athena and in Timestream."""
    kinesis = client(endpoint, "kinesis")
    tq = client(endpoint, "timestream-query")
    table = f'"{out["lake_catalog"]["database"]}"."{out["lake_catalog"]["table"]}"'
    ts_table = f'"{out["timestream"]["database"]}"."{out["timestream"]["table"]}"'
    lake, ts = [], []
    for n in range(samples):
        device = f"bench{n:03d}x{int(time.time())}"
        body = {"deviceId": device, "timestamp": datetime.now(UTC).isoformat(), "temperature": 21.0}
        kinesis.put_record(
            StreamName=out["stream"]["name"], PartitionKey=device, Data=json.dumps(body)
        )
        start = time.perf_counter()
        got_ts = got_lake = None
        while got_lake is None or got_ts is None:
            now = time.perf_counter() - start
            if got_ts is None:
                sql = f"SELECT count(*) FROM {ts_table} WHERE DeviceId = '{device}'"
                try:
                    rows = tq.query(QueryString=sql)["Rows"]
                except tq.exceptions.ValidationException:  # no row yet: no DeviceId column
                    rows = []
                if rows and rows[0]["Data"][0].get("ScalarValue") == "1":
                    got_ts = now
            if got_lake is None:
                sql = f"SELECT count(*) FROM {table} WHERE device_id = '{device}'"
                if athena(endpoint, out["workgroup"]["name"], sql)[0][0][0] == "1":
                    got_lake = now
            if now > 60:
                raise SystemExit("bench: a row did not arrive within 60 s")
            time.sleep(0.02)
        lake.append(got_lake)
        ts.append(got_ts)
    return lake, ts


def firehose_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "records": [
            {
                "recordId": r["kinesis"]["sequenceNumber"],
                "approximateArrivalTimestamp": int(
                    r["kinesis"]["approximateArrivalTimestamp"] * 1000
                ),
                "data": r["kinesis"]["data"],
            }
            for r in records
        ]
    }


def cpu_per_message(messages: int) -> tuple[float, float, list[bytes]]:
    """µs of CPU per message: the Kinesis handler (its clients faked, no round trip) and
    the transform, on the same messages; plus the transform's Ok rows."""
    records, _ = synthesize(messages, 0.05, 500)
    conf = bench_settings(500, "multi")
    invoke, _ = iotpipe_invoker(conf, 0.0, {})
    batches = [records[i : i + 100] for i in range(0, len(records), 100)]
    events = [firehose_event(records[i : i + 1000]) for i in range(0, len(records), 1000)]
    rows: list[bytes] = []
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for _ in range(2):  # warm both, then measure the second round
            gc.collect()
            cpu = time.process_time()
            for batch in batches:
                invoke({"Records": batch})
            handler_s = time.process_time() - cpu
            gc.collect()
            cpu = time.process_time()
            outs = [transform.process(e, conf, clock=lambda: NOW).records for e in events]
            transform_s = time.process_time() - cpu
    for out in outs:
        rows += [base64.b64decode(r["data"]) for r in out if r["result"] == "Ok"]
    return handler_s / messages * 1e6, transform_s / messages * 1e6, rows


def parquet_ratio(rows: list[bytes]) -> tuple[float, float]:
    """Bytes per reading: Parquet (as the embedded Firehose writes it) and the JSON rows."""
    columns = lakeschema.columns(Config(lake=LakeConfig(enabled=True)))
    converted = parquet.convert(rows, columns)
    assert converted.data is not None and not converted.failures
    return len(converted.data) / converted.rows, sum(len(r) for r in rows) / len(rows)


def write_rows(endpoint: str, out: dict[str, Any], total: int, work: Path) -> Path:
    """``total`` rows over 24 hours of one day, one Parquet object per hour, into the
    lake's bucket (as Firehose would have written them); the files are kept for DuckDB."""
    bucket = out["lake_bucket"]["name"]
    s3 = client(endpoint, "s3")
    day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    files = work / "rows"
    con = duckdb.connect()
    for hour in range(24):
        per_hour = total // 24 + (1 if hour < total % 24 else 0)
        path = files / f"dt={day}" / f"hour={hour:02d}" / "part.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"""COPY (SELECT TIMESTAMP '{day} {hour:02d}:00:00' + to_milliseconds(i * 3) AS time,
                  'sensor' || lpad((i % 500)::VARCHAR, 4, '0') AS device_id,
                  'factory_floor_' || (i % 10)::VARCHAR AS location,
                  'env_sensor' AS device_type, '2026-09-01' AS last_maintenance,
                  15 + (i % 200) / 10.0 AS temperature, 30 + (i % 400) / 10.0 AS humidity,
                  NULL::DOUBLE AS pressure, NULL::DOUBLE AS vibration
                FROM range({per_hour}) t(i)) TO '{path}' (FORMAT parquet, COMPRESSION snappy)"""
        )
        key = f"data/dt={day}/hour={hour:02d}/bench-{hour:02d}.parquet"
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return files


GROUPED = (
    "SELECT device_id, count(*) AS n, avg(temperature) AS t, max(humidity) AS h "
    "FROM {table} GROUP BY device_id ORDER BY n DESC LIMIT 10"
)


def grouped(endpoint: str, out: dict[str, Any], files: Path, runs: int = 5) -> dict[str, Any]:
    table = f'"{out["lake_catalog"]["database"]}"."{out["lake_catalog"]["table"]}"'
    wg = out["workgroup"]["name"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        _, ex = athena(endpoint, wg, GROUPED.format(table=table))
        times.append(time.perf_counter() - start)
    scanned_all = int(ex["Statistics"]["DataScannedInBytes"])
    day = next(files.iterdir()).name.split("=")[1]
    _, one = athena(endpoint, wg, f"SELECT count(*) FROM {table} WHERE dt = '{day}' AND hour = 7")
    con = duckdb.connect()
    source = f"read_parquet('{files}/*/*/*.parquet', hive_partitioning=true)"
    direct = []
    for _ in range(runs):
        start = time.perf_counter()
        con.execute(GROUPED.format(table=source)).fetchall()
        direct.append(time.perf_counter() - start)
    count, _ = athena(endpoint, wg, f"SELECT count(*) FROM {table}")
    return {
        "rows": int(count[0][0]),
        "athena_s": statistics.median(times),
        "duckdb_s": statistics.median(direct),
        "scanned_all": scanned_all,
        "scanned_hour": int(one["Statistics"]["DataScannedInBytes"]),
    }


def cost_table() -> None:
    a = lakecost.Assumptions()
    model = lakecost.monthly(a)
    shared = sum(model["shared ingest"].values())
    print(f"\n5. Modelled monthly cost at {a.rate:,.0f} msg/s, {a.message_bytes} B messages (USD)")
    print(f"   shared ingest (IoT Core + Kinesis): {shared:>9,.0f}")
    for branch in ("timestream", "lake"):
        items = model[branch]
        print(
            f"   {branch} branch: {sum(items.values()):>9,.0f}   "
            + ", ".join(f"{k} {v:,.0f}" for k, v in items.items())
        )
    print(f"   assumptions: {a}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    for key, value in (("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "bench")):
        os.environ.setdefault(key, value)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    print(f"bench/lake.py, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs")

    handler_us, transform_us, rows = cpu_per_message(args.messages)
    pq, js = parquet_ratio(rows)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        endpoint, out = deploy(work)
        try:
            lake, ts = latency(endpoint, out, args.samples)
            files = write_rows(endpoint, out, args.rows, work)
            g = grouped(endpoint, out, files)
        finally:
            lifecycle.stop(work / ".iotpipe")

    print("\n1. Put -> queryable, buffer_s 1 (target: lake <= 3 s)")
    print(f"   lake (Athena):  median {statistics.median(lake):.2f} s, max {max(lake):.2f} s")
    print(f"   Timestream:     median {statistics.median(ts):.2f} s, max {max(ts):.2f} s")
    print(f"\n2. CPU per message, {args.messages:,} messages, 5 % invalid (target <= 1.2x)")
    print(
        f"   Kinesis handler {handler_us:.1f} µs, transform {transform_us:.1f} µs "
        f"({transform_us / handler_us:.2f}x)"
    )
    print(f"\n3. Bytes per reading, {len(rows):,} rows in one object (target <= 0.25x)")
    print(f"   Parquet {pq:.1f} B, JSON rows {js:.1f} B ({pq / js:.3f}x)")
    print(f"\n4. Grouped Athena query over {g['rows']:,} rows (--rows plus the latency")
    print("   samples; target <= 1 s)")
    print(
        f"   embedded Athena {g['athena_s'] * 1000:.0f} ms (start to SUCCEEDED), "
        f"DuckDB on the same files {g['duckdb_s'] * 1000:.0f} ms"
    )
    print(
        f"   scanned: one hour {g['scanned_hour']:,} B, all {g['scanned_all']:,} B "
        f"({g['scanned_hour'] / g['scanned_all']:.3f}x)"
    )
    cost_table()


if __name__ == "__main__":
    main()
