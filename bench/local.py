"""Benchmark of the embedded AWS (prints figures; not a timed test).

    python bench/local.py [--records 25000] [--window 1] [--baseline-records 2500]

In one run: emulator start time; Kinesis PutRecords throughput (500-record batches)
through the emulator, with a mapping and a function writing to Timestream running, and
through a plain moto server with a mapping present (the baseline); put -> queryable
latency p50/p95; query latency over 100,000 rows; then (bench/quarantine.py) invoke time
with 0 and 20,000 messages in the failure queue and ``query quality`` at 1,000 / 10,000 /
100,000 quarantined messages beside the old peek-based way (``--quarantine-only``: just
that section); then (bench/durable.py) persistence beside ``--ephemeral``: PutRecords
throughput, put -> queryable through ``iotpipe up`` + ``send-test``, RSS at 200,000 and
``--retained`` messages, start time with them retained, recovery after ``kill -9``
(``--durable-only``: just that section).
Targets: start <= 1.5 s; >= 5,000 records/s and >= 15x the baseline; p95 <= batching
window + 1 s; a grouped query over 100,000 rows <= 200 ms.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import boto3
import durable as dbench  # bench/durable.py, beside this script
from benchaws import create_timestream_table

from iotpipe.local import lifecycle

# Like the real function: one single-measure record per sensor value, written 100 a call.
HANDLER = """
import base64, json, os
import boto3
ts = boto3.client("timestream-write")
DB, TABLE = os.environ["TIMESTREAM_DATABASE"], os.environ["TIMESTREAM_TABLE"]
MEASURES = ("temperature", "humidity", "pressure", "vibration")

def handler(event, context):
    out = []
    for r in event["Records"]:
        m = json.loads(base64.b64decode(r["kinesis"]["data"]))
        dims = [{"Name": "DeviceId", "Value": m["deviceId"]}, {"Name": "Location", "Value": "factory_floor_1"},
                {"Name": "DeviceType", "Value": "temperature_sensor"}]
        for name in MEASURES:
            if name in m:
                out.append({"Dimensions": dims, "MeasureName": name, "MeasureValue": str(m[name]),
                            "MeasureValueType": "DOUBLE", "Time": str(m["timestamp"])})
    for i in range(0, len(out), 100):
        ts.write_records(DatabaseName=DB, TableName=TABLE, Records=out[i:i + 100])
    return {"batchItemFailures": []}
"""
GROUPED = (
    "SELECT DeviceId, avg(measure_value::double) AS avg_temperature FROM {t} "
    "WHERE measure_name = 'temperature' AND time > ago(1h) GROUP BY DeviceId"
)
BINNED = (
    "SELECT DeviceId, bin(time, 1m) AS minute, avg(measure_value::double) AS v FROM {t} "
    "WHERE measure_name = 'humidity' GROUP BY DeviceId, bin(time, 1m)"
)


def clients(endpoint: str, names: tuple[str, ...] = ()) -> dict[str, Any]:
    kw = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    names = names or ("kinesis", "lambda", "iam", "timestream-write", "timestream-query", "sqs")
    return {n: boto3.client(n, **kw) for n in names}


def zipped(code: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("fn.py", code)
    return buf.getvalue()


def provision(c: dict[str, Any], window: int, with_timestream: bool = True) -> str:
    """Stream + (Timestream) + function + mapping; returns the stream name."""
    c["kinesis"].create_stream(StreamName="bench", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    arn = c["kinesis"].describe_stream_summary(StreamName="bench")["StreamDescriptionSummary"][
        "StreamARN"
    ]
    if with_timestream:
        create_timestream_table(c["timestream-write"], "benchdb", "sensor-data")
    role = c["iam"].create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    c["lambda"].create_function(
        FunctionName="bench",
        Runtime="python3.13",
        Role=role,
        Handler="fn.handler",
        Timeout=60,
        Code={"ZipFile": zipped(HANDLER)},
        Environment={
            "Variables": {"TIMESTREAM_DATABASE": "benchdb", "TIMESTREAM_TABLE": "sensor-data"}
        },
    )
    c["lambda"].create_event_source_mapping(
        FunctionName="bench",
        EventSourceArn=arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=500,
        MaximumBatchingWindowInSeconds=window,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    return "bench"


def batches(n: int, prefix: str = "sensor") -> list[list[dict[str, Any]]]:
    now = int(time.time() * 1000)
    recs = [
        {
            "Data": json.dumps(
                {
                    "deviceId": f"{prefix}{i % 50:03d}",
                    "timestamp": now - n + i,
                    "temperature": 20 + i % 10,
                    "humidity": 45.5,
                    "pressure": 1013.25,
                    "vibration": (i % 7) / 10,
                }
            ).encode(),
            "PartitionKey": f"{prefix}{i % 50:03d}",
        }
        for i in range(n)
    ]
    return [recs[i : i + 500] for i in range(0, n, 500)]


def put_all(kinesis: Any, stream: str, work: list[list[dict[str, Any]]]) -> float:
    """Records/s of sequential 500-record PutRecords calls."""
    started = time.perf_counter()
    count = 0
    for batch in work:
        out = kinesis.put_records(StreamName=stream, Records=batch)
        assert out["FailedRecordCount"] == 0
        count += len(batch)
    return count / (time.perf_counter() - started)


def count_rows(tq: Any) -> int:
    out = tq.query(QueryString='SELECT count(*) FROM "benchdb"."sensor-data"')
    return int(out["Rows"][0]["Data"][0]["ScalarValue"])


def latency(c: dict[str, Any], samples: int) -> list[float]:
    """Seconds from PutRecord returning to the record being visible to a query."""
    put_at: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        tq = c["timestream-query-2"]
        while not done.is_set():
            out = tq.query(
                QueryString='SELECT DISTINCT DeviceId FROM "benchdb"."sensor-data" '
                "WHERE DeviceId LIKE 'lat%'"
            )
            now = time.perf_counter()
            for row in out["Rows"]:
                seen.setdefault(row["Data"][0]["ScalarValue"], now)
            if len(seen) >= samples:
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch)
    thread.start()
    now = int(time.time() * 1000)
    for i in range(samples):
        dev = f"lat{i:04d}"
        body = {"deviceId": dev, "timestamp": now + i, "temperature": 1.0}
        c["kinesis"].put_record(
            StreamName="bench", Data=json.dumps(body).encode(), PartitionKey=dev
        )
        put_at[dev] = time.perf_counter()
        time.sleep(0.1)
    thread.join(timeout=60)
    done.set()
    return [seen[d] - put_at[d] for d in put_at if d in seen]


def timed_queries(tq: Any, sql: str, runs: int = 20) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        tq.query(QueryString=sql.format(t='"benchdb"."sensor-data"'))
        out.append(time.perf_counter() - t)
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def baseline(records: int, window: int) -> float:
    """PutRecords through a plain moto server (no patches) with a mapping present."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        c = clients(endpoint)
        stream = provision(c, window, with_timestream=False)
        work = batches(records)
        c["kinesis"].put_records(StreamName=stream, Records=work[0])  # warm-up
        return put_all(c["kinesis"], stream, work[1:])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=25_000, help="messages put (x4 rows)")
    parser.add_argument("--window", type=int, default=1, help="MaximumBatchingWindowInSeconds")
    parser.add_argument("--baseline-records", type=int, default=2_500)
    parser.add_argument("--latency-samples", type=int, default=40)
    parser.add_argument(
        "--quarantine-only", action="store_true", help="only the failure-queue section"
    )
    parser.add_argument("--queue-depth", type=int, default=20_000, help="for invoke times")
    parser.add_argument("--quality-depths", default="1000,10000,100000")
    parser.add_argument("--invocations", type=int, default=30, help="timed invokes per depth")
    dbench.add_arguments(parser)
    args = parser.parse_args()
    if args.quarantine_only:
        quarantine_section(args)
        return
    if args.durable_only:
        dbench.run(args)
        return

    home = Path(tempfile.mkdtemp(prefix="iotpipe-bench-"))
    starts = []
    for i in range(3):
        t = time.perf_counter()
        info = lifecycle.start(home / f"s{i}")
        starts.append(time.perf_counter() - t)
        if i < 2:
            lifecycle.stop(home / f"s{i}")
    try:
        c = clients(info.endpoint)
        c["timestream-query-2"] = clients(info.endpoint)["timestream-query"]
        stream = provision(c, args.window)
        work = batches(args.records)
        c["kinesis"].put_records(
            StreamName=stream, Records=work[0]
        )  # warm-up (function cold start)
        rate = put_all(c["kinesis"], stream, work[1:])
        expected = len(work) * 500 * 4
        t = time.perf_counter()
        deadline = time.monotonic() + 300
        while (
            rows := count_rows(c["timestream-query"])
        ) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        drain = time.perf_counter() - t
        lat = latency(c, args.latency_samples)
        grouped = timed_queries(c["timestream-query"], GROUPED)
        binned = timed_queries(c["timestream-query"], BINNED)
        status = lifecycle.status(home / "s2") or {}
    finally:
        lifecycle.stop(home / "s2")
        shutil.rmtree(home, ignore_errors=True)
    base = baseline(args.baseline_records, args.window)

    print("embedded AWS benchmark")
    print(
        f"  emulator start (3 runs)        : median {statistics.median(starts):.2f} s, max {max(starts):.2f} s"
        f"   [target <= 1.5 s]"
    )
    print(
        f"  PutRecords, emulator           : {rate:,.0f} records/s  ({len(work) * 500:,} records, 500/call, "
        f"mapping + function writing Timestream running)   [target >= 5,000/s]"
    )
    print(
        f"  PutRecords, plain moto baseline: {base:,.0f} records/s  ({args.baseline_records:,} records, "
        f"mapping present)"
    )
    print(f"  speed-up                       : {rate / base:.1f}x   [target >= 15x]")
    print(f"  backlog drained into Timestream: {rows:,} rows {drain:.2f} s after the last put")
    print(
        f"  put -> queryable latency       : p50 {pct(lat, 50):.2f} s, p95 {pct(lat, 95):.2f} s "
        f"({len(lat)} samples, window {args.window} s)   [target p95 <= {args.window + 1} s]"
    )
    print(
        f"  grouped query over {rows:,} rows: p50 {pct(grouped, 50) * 1000:.0f} ms, "
        f"p95 {pct(grouped, 95) * 1000:.0f} ms (HTTP round trip included)   [target <= 200 ms]"
    )
    print(
        f"  bin(time, 1m) query            : p50 {pct(binned, 50) * 1000:.0f} ms, "
        f"p95 {pct(binned, 95) * 1000:.0f} ms"
    )
    print(f"  status counts                  : {json.dumps(status.get('counts', {}))}")
    quarantine_section(args)
    dbench.run(args)


def quarantine_section(args: argparse.Namespace) -> None:
    """Failure-queue depth vs invoke time, and ``query quality`` at depth (bench/quarantine.py)."""
    import quarantine as qbench  # bench/quarantine.py, beside this script

    home = Path(tempfile.mkdtemp(prefix="iotpipe-bench-q-"))
    info = lifecycle.start(home)
    try:
        c = clients(info.endpoint)
        c["cloudwatch"] = clients(info.endpoint, ("cloudwatch",))["cloudwatch"]
        depths = [int(d) for d in args.quality_depths.split(",") if d]
        print(time.strftime("run %Y-%m-%d %H:%M UTC", time.gmtime()))
        qbench.run(c, zipped, args.queue_depth, depths, args.invocations)
    finally:
        lifecycle.stop(home)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
