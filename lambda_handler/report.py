"""JSON-lines logging, the per-invocation accounting line and its metrics.

Why one JSON object per line: CloudWatch Logs Insights and metric filters parse it
without regexes. Why an accounting line: "nothing is silently dropped" is only true if
someone can check it - every invocation states received = written + quarantined + retry.
The same counts go out in CloudWatch embedded metric format (EMF), which CloudWatch
turns into metrics with no API call from the function; so do the quarantine entries by
reason (`reason_emf`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Level = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LEVELS: dict[str, int] = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
NAMESPACE = "iotpipe"


def _stdout(line: str) -> None:
    sys.stdout.write(line + "\n")


class Log:
    """Writes `{"level": ..., "msg": ..., **fields}` lines through `emit`.

    `emit` is injectable so tests can capture lines; the default writes to stdout,
    which Lambda forwards to CloudWatch Logs.
    """

    def __init__(self, emit: Callable[[str], None] = _stdout, level: str | None = None) -> None:
        self.emit = emit
        name = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
        self.threshold = LEVELS.get(name, 20)

    def log(self, level: Level, msg: str, **fields: Any) -> None:
        if LEVELS[level] >= self.threshold:
            self.emit(dumps({"level": level, "msg": msg, **fields}))

    def info(self, msg: str, **fields: Any) -> None:
        self.log("INFO", msg, **fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self.log("WARNING", msg, **fields)

    def error(self, msg: str, **fields: Any) -> None:
        self.log("ERROR", msg, **fields)


@dataclass(slots=True)
class BatchSummary:
    """What happened to one invocation's records; `balanced` must always hold."""

    received: int = 0
    written: int = 0
    quarantined: int = 0
    retry: int = 0
    measures_rejected: int = 0
    records_written: int = 0
    write_requests: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.received == self.written + self.quarantined + self.retry

    def fields(self) -> dict[str, Any]:
        """The accounting line's fields, in a stable order."""
        return {
            "received": self.received,
            "written": self.written,
            "quarantined": self.quarantined,
            "retry": self.retry,
            "measures_rejected": self.measures_rejected,
            "records_written": self.records_written,
            "write_requests": self.write_requests,
            "reasons": dict(sorted(self.reasons.items())),
            "balanced": self.balanced,
        }


def function_name_of(context: Any, default: str) -> str:
    """The ``FunctionName`` dimension of the metrics: Lambda's context, else its
    environment (an invoke without a context), else the branch's own name."""
    return getattr(context, "function_name", None) or os.environ.get(
        "AWS_LAMBDA_FUNCTION_NAME", default
    )


def emf(summary: BatchSummary, function_name: str, now_ms: int) -> dict[str, Any]:
    """The same counts as a CloudWatch embedded-metric-format document."""
    values = {
        "Received": summary.received,
        "Written": summary.written,
        "Quarantined": summary.quarantined,
        "Retry": summary.retry,
        "MeasuresRejected": summary.measures_rejected,
        "RecordsWritten": summary.records_written,
    }
    return {
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
                }
            ],
        },
        "FunctionName": function_name,
        **values,
    }


REASON_METRIC = "QuarantinedByReason"


def reason_emf(summary: BatchSummary, function_name: str, now_ms: int) -> list[dict[str, Any]]:
    """One EMF document per quarantine reason of the invocation (none when nothing was).

    `QuarantinedByReason` (dimensions FunctionName, Reason) counts the entries sent to
    the failure queue, by reason. Summed over a time window it answers "how many, why"
    exactly and in constant time however deep the queue is, which reading the queue
    cannot (`iotpipe query quality` sums it). A document carries one value per dimension,
    hence one document per reason.
    """
    return [
        {
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [["FunctionName", "Reason"]],
                        "Metrics": [{"Name": REASON_METRIC, "Unit": "Count"}],
                    }
                ],
            },
            "FunctionName": function_name,
            "Reason": reason,
            REASON_METRIC: count,
        }
        for reason, count in sorted(summary.reasons.items())
        if count
    ]


def dumps(doc: Any) -> str:
    """Compact, ASCII-only JSON; non-JSON values (sets, exceptions) become strings."""
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":"), default=str)
