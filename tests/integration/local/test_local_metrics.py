"""A function's EMF lines become CloudWatch metrics on the embedded AWS, as on Lambda.

Read back with boto3's CloudWatch client, as a user's script or dashboard would.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

pytestmark = pytest.mark.integration

EMF_HANDLER = """
import json, os, time

def handler(event, context):
    if event.get("crash"):
        os._exit(3)
    for reason, n in event["reasons"].items():
        print(json.dumps({
            "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
                "Namespace": "iotpipe-test", "Dimensions": [["FunctionName", "Reason"]],
                "Metrics": [{"Name": "QuarantinedByReason", "Unit": "Count"}]}]},
            "FunctionName": context.function_name, "Reason": reason,
            "QuarantinedByReason": n}))
    print('{"_aws": "not an EMF document"}')
    print("a plain line")
    return {"ok": True}
"""


def metric_sum(aws: Any, namespace: str, name: str, dims: dict[str, str]) -> float:
    now = dt.datetime.now(dt.UTC)
    out = aws.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                    },
                    "Period": 3600,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=now - dt.timedelta(minutes=30),
        EndTime=now + dt.timedelta(minutes=2),
    )
    return sum(out["MetricDataResults"][0]["Values"])


def test_emf_lines_are_metrics_once_the_invoke_returns(pipeline: Any, local_aws: Any) -> None:
    p = pipeline(code=EMF_HANDLER)
    lam = local_aws.client("lambda")
    for _ in range(3):  # no polling: an invoke returns after its log (and metrics) are in
        event = {"reasons": {"out_of_range": 4, "empty": 1}}
        out = lam.invoke(FunctionName=p.function, Payload=json.dumps(event).encode())
        assert json.loads(out["Payload"].read()) == {"ok": True}
    dims = {"FunctionName": p.function, "Reason": "out_of_range"}
    assert metric_sum(local_aws, "iotpipe-test", "QuarantinedByReason", dims) == 12
    dims["Reason"] = "empty"
    assert metric_sum(local_aws, "iotpipe-test", "QuarantinedByReason", dims) == 3
    stats = local_aws.client("cloudwatch").get_metric_statistics(
        Namespace="iotpipe-test",
        MetricName="QuarantinedByReason",
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30),
        EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2),
        Period=3600,
        Statistics=["SampleCount", "Maximum"],
    )["Datapoints"]
    assert [(d["SampleCount"], d["Maximum"]) for d in stats] == [(3.0, 1.0)]  # per minute, kept


def test_a_crash_is_counted_as_function_crashes(pipeline: Any, local_aws: Any) -> None:
    p = pipeline(code=EMF_HANDLER)
    before = local_aws.status()["counters"].get("function_crashes", 0)
    out = local_aws.client("lambda").invoke(
        FunctionName=p.function, Payload=json.dumps({"crash": True}).encode()
    )
    assert out.get("FunctionError")
    counters = local_aws.status()["counters"]
    assert counters.get("function_crashes", 0) == before + 1
    assert "function_crashs" not in counters
