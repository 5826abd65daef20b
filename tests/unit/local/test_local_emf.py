"""EMF log lines -> moto's CloudWatch (the embedded AWS's stand-in for CloudWatch Logs)."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import boto3
import pytest

from iotpipe.local import metrics

ACCOUNT, REGION = "123456789012", "us-east-1"


@pytest.fixture
def cw(monkeypatch: pytest.MonkeyPatch) -> Any:
    from moto import mock_aws

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    with mock_aws():
        yield boto3.client("cloudwatch", region_name=REGION)


def emf(values: dict[str, Any], dims: list[list[str]], **top: Any) -> str:
    names = [{"Name": k, "Unit": "Count"} for k in values]
    meta = {"Namespace": "ns", "Dimensions": dims, "Metrics": names}
    doc = {"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [meta]}}
    return json.dumps({**doc, **top, **values})


def stats(cw: Any, name: str, dims: dict[str, str]) -> list[float]:
    """Sum, SampleCount, Minimum, Maximum of exactly this dimension set (GetMetricData)."""
    now = dt.datetime.now(dt.UTC)
    metric = {
        "Namespace": "ns",
        "MetricName": name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
    }
    queries = [
        {"Id": f"q{i}", "MetricStat": {"Metric": metric, "Period": 3600, "Stat": stat}}
        for i, stat in enumerate(("Sum", "SampleCount", "Minimum", "Maximum"))
    ]
    out = cw.get_metric_data(
        MetricDataQueries=queries,
        StartTime=now - dt.timedelta(minutes=10),
        EndTime=now + dt.timedelta(minutes=2),
    )["MetricDataResults"]
    return [sum(r["Values"]) for r in sorted(out, key=lambda r: r["Id"])]


def test_values_land_per_dimension_set_and_keep_their_statistics(cw: Any) -> None:
    for n in (3, 5, [1, 2]):
        line = emf(
            {"Written": n},
            [["FunctionName"], ["FunctionName", "Shard"]],
            FunctionName="f",
            Shard="s0",
        )
        metrics.from_log_line(ACCOUNT, REGION, line)
    assert stats(cw, "Written", {"FunctionName": "f"}) == [11, 4, 1, 5]
    assert stats(cw, "Written", {"FunctionName": "f", "Shard": "s0"}) == [11, 4, 1, 5]


@pytest.mark.parametrize(
    "line",
    [
        "START RequestId: x",
        '{"_aws": "not a dict"}',
        '{"_aws": {"CloudWatchMetrics": [{"Namespace": "ns"',
        emf({"Bad": "text"}, [["FunctionName"]], FunctionName="f"),
        emf({"Bad": float("nan")}, [["FunctionName"]], FunctionName="f"),
        emf({"Bad": 1}, [["Missing"]]),
    ],
)
def test_what_is_not_valid_emf_stays_a_log_line(cw: Any, line: str) -> None:
    assert metrics.from_log_line(ACCOUNT, REGION, line) == 0
    assert cw.list_metrics(Namespace="ns")["Metrics"] == []
