"""CloudWatch metrics the embedded AWS publishes, as AWS would: EMF lines and IoT rule metrics.

On AWS, a Lambda function's embedded-metric-format (EMF) log lines become CloudWatch
metrics with no API call, and IoT Core publishes its rule metrics (``AWS/IoT``
``TopicMatch``, ``ParseError``, ``Success``, ``Failure``) by itself. moto does neither, so
``iotpipe query quality`` (which sums those metrics) would see nothing. Here both go
straight into moto's CloudWatch backend.

Why aggregated: CloudWatch keeps these metrics at one-minute resolution anyway, and moto
answers GetMetricData by scanning every datum it holds. One statistic set per metric,
dimension set and minute (sum, minimum, maximum, sample count) keeps every statistic
right and the scan short, however many messages went through.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
from typing import Any

from iotpipe.local import motointernals as moto

log = logging.getLogger("iotpipe.local.metrics")

_lock = threading.Lock()
# (account, region, namespace, name, dims, unit) -> (backend, minute, datum)
_open: dict[tuple[Any, ...], tuple[Any, dt.datetime, Any]] = {}


def _minute(epoch_ms: float) -> dt.datetime:
    """The naive-UTC start of the minute (moto compares naive UTC datetimes)."""
    when = dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).replace(tzinfo=None)
    return when.replace(second=0, microsecond=0)


def put(
    account: str,
    region: str,
    namespace: str,
    name: str,
    dimensions: dict[str, str],
    value: float,
    *,
    unit: str = "Count",
    epoch_ms: float,
) -> None:
    """Add one observation to the metric's statistic set for that minute."""
    backend = moto.cloudwatch_backend(account, region)
    minute = _minute(epoch_ms)
    dims = tuple(sorted(dimensions.items()))
    key = (account, region, namespace, name, dims, unit)
    with _lock:
        held = _open.get(key)
        if held is not None and held[0] is backend and held[1] == minute:
            datum = held[2]
            datum.sum += value
            datum.min = min(datum.min, value)
            datum.max = max(datum.max, value)
            datum.sample_count += 1
            return
        datum = moto.add_metric(
            backend,
            namespace=namespace,
            name=name,
            min_stat=value,
            max_stat=value,
            sample_count=1,
            sum_stat=value,
            dimensions=[{"Name": k, "Value": v} for k, v in dims],
            timestamp=minute,
            unit=unit,
        )
        _open[key] = (backend, minute, datum)


def from_log_line(account: str, region: str, text: str) -> int:
    """Publish the metrics of an EMF log line; return how many values (0 if not EMF).

    A line that is not a valid EMF document is left as a log line only, as CloudWatch
    does; EMF's limits (100 metrics, 30 dimensions) are not enforced here.
    """
    if '"_aws"' not in text:
        return 0
    try:
        doc = json.loads(text)
    except ValueError:
        return 0
    if not isinstance(doc, dict) or not isinstance(doc.get("_aws"), dict):
        return 0
    try:
        return _publish_emf(account, region, doc)
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        log.warning("invalid EMF document ignored: %s", e)
        return 0


def _publish_emf(account: str, region: str, doc: dict[str, Any]) -> int:
    meta = doc["_aws"]
    epoch_ms = float(meta.get("Timestamp") or dt.datetime.now(dt.UTC).timestamp() * 1000)
    count = 0
    for directive in meta.get("CloudWatchMetrics") or []:
        namespace = str(directive["Namespace"])
        for dim_set in directive.get("Dimensions") or [[]]:
            dims = {str(d): str(doc[d]) for d in dim_set}
            for metric in directive.get("Metrics") or []:
                name = str(metric["Name"])
                for value in _values(doc.get(name)):
                    put(
                        account,
                        region,
                        namespace,
                        name,
                        dims,
                        value,
                        unit=str(metric.get("Unit") or "None"),
                        epoch_ms=epoch_ms,
                    )
                    count += 1
    return count


def _values(raw: Any) -> list[float]:
    """EMF values are a number or an array of numbers; anything else is skipped."""
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | float):
            continue
        if math.isfinite(item):
            out.append(float(item))
    return out


def iot_rule(account: str, region: str, rule: str, name: str, action: str | None = None) -> None:
    """One of IoT Core's rule metrics (namespace AWS/IoT, dimension RuleName [+ ActionType])."""
    dims = {"RuleName": rule}
    if action:
        dims["ActionType"] = action
    now_ms = dt.datetime.now(dt.UTC).timestamp() * 1000
    put(account, region, "AWS/IoT", name, dims, 1.0, epoch_ms=now_ms)
