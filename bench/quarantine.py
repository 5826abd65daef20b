"""Benchmark: the failure queue's depth vs processing time, and ``query quality`` at depth.

    python bench/local.py --quarantine-only [--queue-depth 20000] [--quality-depths ...]

Run against the embedded AWS (HTTP), in one run:
1. Processing time per invocation (client-side Invoke latency of a 100-record Kinesis
   event; the function writes 90 records to Timestream, sends 10 to the failure queue and
   prints its EMF lines, as the real one does) with 0 and N messages in the failure queue.
   Target: no growth beyond 10 %.
2. ``quality`` (iotpipe.quarantine.quarantine_report: metric sums + a bounded sample) at
   1,000 / 10,000 / 100,000 quarantined messages, side by side with the old way (peek:
   receive with a 30 s hold until 1,000 messages, then count them). Target: under 5 s at
   100,000. The queue depth is checked unchanged after each run.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
import uuid
from types import SimpleNamespace
from typing import Any

from benchaws import create_timestream_table

from iotpipe.failurequeue import Quarantined, quality, quarantine_report
from lambda_handler import report

QUEUE, FUNCTION, RULE = "bench-failures", "bench-quarantine", "bench_rule"
QUALITY_QUEUE = "bench-quality-failures"
REASONS = ("out_of_range", "malformed_json", "not_a_number", "missing_device_id")

HANDLER = """
import base64, json, os, time
import boto3
ts, sqs = boto3.client("timestream-write"), boto3.client("sqs")
DB, TABLE, URL = os.environ["TIMESTREAM_DATABASE"], os.environ["TIMESTREAM_TABLE"], os.environ["QUEUE_URL"]

def handler(event, context):
    rows, bad = [], []
    for r in event["Records"]:
        m = json.loads(base64.b64decode(r["kinesis"]["data"]))
        if m.get("bad"):
            bad.append({"Id": str(len(bad)), "MessageBody": json.dumps(
                {"source": "iotpipe-handler", "reason": "out_of_range", "deviceId": m["deviceId"],
                 "shardId": "shardId-000000000000", "sequenceNumber": r["kinesis"]["sequenceNumber"]})})
            continue
        rows.append({"Dimensions": [{"Name": "DeviceId", "Value": m["deviceId"]}],
                     "MeasureName": "temperature", "MeasureValue": str(m["temperature"]),
                     "MeasureValueType": "DOUBLE", "Time": str(m["timestamp"])})
    for i in range(0, len(rows), 100):
        ts.write_records(DatabaseName=DB, TableName=TABLE, Records=rows[i:i + 100])
    for i in range(0, len(bad), 10):
        sqs.send_message_batch(QueueUrl=URL, Entries=bad[i:i + 10])
    now = int(time.time() * 1000)
    print(json.dumps({"_aws": {"Timestamp": now, "CloudWatchMetrics": [{"Namespace": "iotpipe",
        "Dimensions": [["FunctionName"]], "Metrics": [{"Name": "Received", "Unit": "Count"}]}]},
        "FunctionName": context.function_name, "Received": len(event["Records"])}))
    print(json.dumps({"_aws": {"Timestamp": now, "CloudWatchMetrics": [{"Namespace": "iotpipe",
        "Dimensions": [["FunctionName", "Reason"]], "Metrics": [{"Name": "QuarantinedByReason",
        "Unit": "Count"}]}]}, "FunctionName": context.function_name, "Reason": "out_of_range",
        "QuarantinedByReason": len(bad)}))
    return {"batchItemFailures": []}
"""


def _event(n: int = 100, bad_every: int = 10) -> dict[str, Any]:
    now = int(time.time() * 1000)
    records = []
    for i in range(n):
        body = {"deviceId": f"d{i % 20:03d}", "timestamp": now - i, "temperature": 20.5}
        if i % bad_every == 0:
            body["bad"] = True
        records.append(
            {
                "kinesis": {
                    "data": base64.b64encode(json.dumps(body).encode()).decode(),
                    "sequenceNumber": f"{now}{i:06d}",
                    "partitionKey": body["deviceId"],
                },
                "eventSource": "aws:kinesis",
            }
        )
    return {"Records": records}


def provision(c: dict[str, Any], zipped: Any) -> str:
    url = c["sqs"].create_queue(QueueName=QUEUE)["QueueUrl"]
    create_timestream_table(c["timestream-write"], "qbench", "t")
    role = c["iam"].create_role(RoleName="qbench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    env = {"TIMESTREAM_DATABASE": "qbench", "TIMESTREAM_TABLE": "t", "QUEUE_URL": url}
    c["lambda"].create_function(
        FunctionName=FUNCTION,
        Runtime="python3.13",
        Role=role,
        Handler="fn.handler",
        Timeout=60,
        Code={"ZipFile": zipped(HANDLER)},
        Environment={"Variables": env},
    )
    return str(url)


def invoke_ms(lam: Any, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        payload = json.dumps(_event()).encode()
        t = time.perf_counter()
        resp = lam.invoke(FunctionName=FUNCTION, Payload=payload)
        resp["Payload"].read()
        assert "FunctionError" not in resp, resp
        out.append((time.perf_counter() - t) * 1000)
    return out


def fill(c: dict[str, Any], url: str, target: int, function: str = FUNCTION) -> float:
    """Top the queue up to `target` messages (SendMessageBatch) and publish their metric."""
    sqs, have = c["sqs"], depth(c["sqs"], url)
    started = time.perf_counter()
    added: dict[str, int] = {}
    for i in range(have, target, 10):
        entries = []
        for n in range(min(10, target - i)):
            reason = REASONS[(i + n) % len(REASONS)]
            added[reason] = added.get(reason, 0) + 1
            body = {
                "source": "iotpipe-handler",
                "reason": reason,
                "detail": f"temperature {i + n} not in [-40, 85]",
                "deviceId": f"d{(i + n) % 50:03d}",
                "shardId": "shardId-000000000000",
                "sequenceNumber": str(10**20 + i + n),
            }
            entries.append({"Id": str(n), "MessageBody": json.dumps(body)})
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    dims = [{"Name": "FunctionName", "Value": function}]
    c["cloudwatch"].put_metric_data(
        Namespace=report.NAMESPACE,
        MetricData=[
            {
                "MetricName": report.REASON_METRIC,
                "Dimensions": [*dims, {"Name": "Reason", "Value": reason}],
                "Value": n,
            }
            for reason, n in added.items()
        ],
    )
    return time.perf_counter() - started


def depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attrs[n]) for n in names)


def old_quality(sqs: Any, url: str, limit: int = 1000, cap_s: float = 120) -> tuple[float, int]:
    """The old peek-based way (30 s hold, count up to `limit`), stopped after `cap_s`."""
    seen: dict[str, Quarantined] = {}
    started = time.perf_counter()
    try:
        while len(seen) < limit and time.perf_counter() - started < cap_s:
            got = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=30,
                MessageSystemAttributeNames=["SentTimestamp"],
            ).get("Messages", [])
            if not got:
                break
            for m in got:
                seen[m["MessageId"]] = Quarantined(
                    m["MessageId"], m["ReceiptHandle"], 0, json.loads(m["Body"])
                )
        counted = sum(r["count"] for r in quality(list(seen.values())).rows)
        return time.perf_counter() - started, counted
    finally:
        handles = [q.receipt for q in seen.values()]
        for i in range(0, len(handles), 10):
            entries = [
                {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for n, h in enumerate(handles[i : i + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def new_quality(c: dict[str, Any], function: str) -> tuple[float, int]:
    gateway = SimpleNamespace(client=lambda s: c[s], local=True, endpoint_url=None)
    names = SimpleNamespace(queue=QUALITY_QUEUE, function=function, rule=RULE)
    dep: Any = SimpleNamespace(gateway=gateway, names=names)
    t = time.perf_counter()
    result = quarantine_report(dep, since="1h", device=None)
    return time.perf_counter() - t, sum(r["count"] for r in result.rows)


def run(c: dict[str, Any], zipped: Any, queue_depth: int, depths: list[int], runs: int) -> None:
    url = provision(c, zipped)
    invoke_ms(c["lambda"], 3)  # cold start
    empty = invoke_ms(c["lambda"], runs)
    filled_s = fill(c, url, queue_depth)
    full = invoke_ms(c["lambda"], runs)
    e, f = statistics.median(empty), statistics.median(full)
    print("failure queue depth vs processing (100-record invoke, 10 quarantined)")
    label = f"{queue_depth:,} queued"
    print(
        f"  invoke, {'queue empty':<14}: median {e:.1f} ms, p90 {_p90(empty):.1f} ms ({runs} runs)"
    )
    print(
        f"  invoke, {label:<14}: median {f:.1f} ms, p90 {_p90(full):.1f} ms   "
        f"growth {100 * (f - e) / e:+.0f} %   [target <= +10 %]"
    )
    print(f"  (filling the queue to {queue_depth:,}: {filled_s:.1f} s of SendMessageBatch)")
    c["sqs"].delete_queue(QueueUrl=url)
    _quality_table(c, depths)


def _quality_table(c: dict[str, Any], depths: list[int]) -> None:
    url = c["sqs"].create_queue(QueueName=QUALITY_QUEUE)["QueueUrl"]
    function = f"bench-quality-{uuid.uuid4().hex[:6]}"  # not the metrics of the invokes above
    print("query quality at depth (new: metric sums + sample; old: peek with a 30 s hold)")
    for n in depths:
        fill(c, url, n, function)
        assert depth(c["sqs"], url) == n
        new_s, new_count = new_quality(c, function)
        again_s, again_count = new_quality(c, function)
        assert depth(c["sqs"], url) == n, "quality consumed or hid messages"
        old_s, old_count = old_quality(c["sqs"], url)
        print(
            f"  {n:>7,} queued: new {new_s:5.2f} s / {again_s:5.2f} s (2nd run), counted "
            f"{new_count:,} / {again_count:,}   |   old {old_s:6.2f} s, counted {old_count:,}"
            f"{'   [target < 5 s]' if n >= 100_000 else ''}"
        )


def _p90(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
