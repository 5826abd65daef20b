"""Exact counts of what the pipeline did not deliver, from CloudWatch metrics.

Why metrics and not the failure queue: a queue cannot be counted by content without
reading every message, which takes minutes at a million and makes them invisible to
everyone else meanwhile. The function already counts its quarantine entries by reason
(EMF metric ``iotpipe/QuarantinedByReason``, dimensions FunctionName and Reason), and IoT
Core counts what each rule could not deliver (``AWS/IoT`` ``ParseError`` by RuleName,
``Failure`` by RuleName and ActionType). Summing them over a window is one ListMetrics and
one GetMetricData call per kind, whatever the depth.

CloudWatch keeps these at one-minute resolution and rounds a start time within 15 days
down to the minute, so a window is whole minutes: its start is rounded down, its end is
the end of the current minute.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lambda_handler.reasons import REASONS
from lambda_handler.report import NAMESPACE, REASON_METRIC

IOT_NAMESPACE = "AWS/IoT"
MAX_QUERIES = 500  # GetMetricData's limit per call


@dataclass(frozen=True)
class Window:
    """Whole minutes [start, end) and one period that covers them all."""

    start: dt.datetime
    end: dt.datetime
    now: dt.datetime

    @property
    def period(self) -> int:
        """The window in seconds, rounded up to what CloudWatch allows for its age."""
        span = (self.end - self.start).total_seconds()
        age_days = (self.now - self.start).days
        step = 60 if age_days < 15 else 300 if age_days < 63 else 3600
        return int(math.ceil(span / step) * step)


def window(
    seconds: float, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
) -> Window:
    """The last `seconds`, in whole minutes (the current one included)."""
    at = now()
    end = at.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    start = (at - dt.timedelta(seconds=seconds)).replace(second=0, microsecond=0)
    return Window(start, end, at)


@dataclass
class RuleErrors:
    """What an IoT rule did not deliver: unparseable payloads and failed actions."""

    parse_errors: int = 0
    failures: dict[str, int] | None = None

    @property
    def total(self) -> int:
        return self.parse_errors + sum((self.failures or {}).values())

    def text(self) -> str:
        parts = [f"{self.parse_errors} not a JSON object (ParseError)"] if self.parse_errors else []
        parts += [
            f"{n} {kind} action failed (Failure)" for kind, n in (self.failures or {}).items() if n
        ]
        return "; ".join(parts)


def quarantined_by_reason(cw: Any, function_name: str, win: Window) -> dict[str, int]:
    """Entries the function sent to the failure queue in `win`, by reason (non-zero only)."""
    base = {"Name": "FunctionName", "Value": function_name}
    reasons = set(REASONS)
    for dims in _dimension_sets(cw, NAMESPACE, REASON_METRIC, [base]):
        reasons.update(d["Value"] for d in dims if d["Name"] == "Reason")
    metrics = {
        reason: (NAMESPACE, REASON_METRIC, [base, {"Name": "Reason", "Value": reason}])
        for reason in sorted(reasons)
    }
    return {k: n for k, n in _sums(cw, metrics, win).items() if n}


def rule_errors(cw: Any, rule_name: str, win: Window) -> RuleErrors:
    """The rule's ParseError and Failure counts in `win`."""
    rule = {"Name": "RuleName", "Value": rule_name}
    metrics: dict[str, tuple[str, str, list[dict[str, str]]]] = {
        "parse": (IOT_NAMESPACE, "ParseError", [rule])
    }
    for dims in _dimension_sets(cw, IOT_NAMESPACE, "Failure", [rule]):
        kind = next((d["Value"] for d in dims if d["Name"] == "ActionType"), "")
        metrics[f"failure:{kind}"] = (IOT_NAMESPACE, "Failure", list(dims))
    sums = _sums(cw, metrics, win)
    failures = {k.split(":", 1)[1] or "rule": n for k, n in sums.items() if k != "parse"}
    return RuleErrors(sums.get("parse", 0), failures)


def _dimension_sets(
    cw: Any, namespace: str, name: str, dims: list[dict[str, str]]
) -> list[tuple[dict[str, str], ...]]:
    """The distinct dimension sets of a metric that include `dims` (ListMetrics)."""
    found: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], ...]] = {}
    kwargs: dict[str, Any] = {"Namespace": namespace, "MetricName": name, "Dimensions": dims}
    while True:
        page = cw.list_metrics(**kwargs)
        for metric in page.get("Metrics", []):
            got = tuple({"Name": d["Name"], "Value": d["Value"]} for d in metric["Dimensions"])
            found[tuple(sorted((d["Name"], d["Value"]) for d in got))] = got
        if not page.get("NextToken"):
            return list(found.values())
        kwargs["NextToken"] = page["NextToken"]


def _sums(
    cw: Any, metrics: dict[str, tuple[str, str, list[dict[str, str]]]], win: Window
) -> dict[str, int]:
    """The Sum of each metric over the window, keyed like `metrics`."""
    keys = list(metrics)
    out = dict.fromkeys(keys, 0.0)
    for chunk in _chunks(range(len(keys)), MAX_QUERIES):
        queries = [_query(f"m{i}", *metrics[keys[i]], win.period) for i in chunk]
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": win.start,
            "EndTime": win.end,
        }
        while True:
            page = cw.get_metric_data(**kwargs)
            for res in page.get("MetricDataResults", []):
                out[keys[int(res["Id"][1:])]] += sum(res.get("Values", []))
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return {k: round(v) for k, v in out.items()}


def _query(
    qid: str, namespace: str, name: str, dims: list[dict[str, str]], period: int
) -> dict[str, Any]:
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dims},
            "Period": period,
            "Stat": "Sum",
        },
        "ReturnData": True,
    }


def _chunks(items: Iterable[int], size: int) -> list[list[int]]:
    items = list(items)
    return [items[i : i + size] for i in range(0, len(items), size)]


class RuleWatch:
    """How many publishes a rule did not deliver while something ran (send-test --via iot).

    The change of the rule's ParseError + Failure sums over one window that starts an
    hour before and ends after the run. Only the embedded AWS publishes rule metrics at
    once; on AWS they arrive minutes later, so there the answer is None (not a false 0).
    """

    def __init__(self, cw: Any, rule_name: str, immediate: bool) -> None:
        self._cw, self._rule, self.immediate = cw, rule_name, immediate
        self._win = window(3600)
        self._before = rule_errors(cw, rule_name, self._win).total if immediate else 0

    def not_delivered(self) -> int | None:
        if not self.immediate:
            return None
        win = Window(self._win.start, window(0).end, self._win.now)
        return rule_errors(self._cw, self._rule, win).total - self._before

    def note(self, count: int | None) -> str:
        if count is None:
            return (
                f"Publishes the IoT rule {self._rule} did not deliver (not a JSON object, "
                "or a failed action) show in 'iotpipe query quality' as rule_error once "
                "CloudWatch has the rule's metrics (a few minutes)."
            )
        if not count:
            return ""
        return (
            f"{count} publish(es) were not delivered by the IoT rule {self._rule} (not a "
            "JSON object, or a failed action): 'iotpipe query quality' counts them as rule_error."
        )


def rule_watch(dep: Any) -> RuleWatch | None:
    """A RuleWatch on the deployment's rule (None if CloudWatch cannot be read)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return RuleWatch(dep.gateway.client("cloudwatch"), dep.names.rule, dep.gateway.local)
    except (ClientError, BotoCoreError):
        return None
