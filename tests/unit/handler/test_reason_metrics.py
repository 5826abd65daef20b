"""The function's per-reason quarantine metric (EMF), which ``query quality`` sums."""

from __future__ import annotations

from handler_helpers import FakeQueue, FakeTimestream, event, multi_settings, reading, run

from lambda_handler import report


def test_each_reason_is_one_emf_document_with_function_and_reason_dimensions():
    messages = [
        reading("sensor001", temperature=12.5),
        b"{bad",
        b"[1]",
        b"{worse",
        {"deviceId": "sensor001", "temperature": 9999},
    ]
    _, logs = run(event(*messages), multi_settings(), timestream=FakeTimestream(), sqs=FakeQueue())
    assert logs.reason_emf == logs.summary["reasons"]
    assert logs.reason_emf["malformed_json"] == 2
    docs = [d for d in logs.docs if "Reason" in d]
    for doc in docs:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Dimensions"] == [["FunctionName", "Reason"]]
        assert directive["Metrics"] == [{"Name": report.REASON_METRIC, "Unit": "Count"}]
        assert directive["Namespace"] == report.NAMESPACE and doc["FunctionName"]


def test_entries_that_never_reached_the_queue_are_not_counted():
    messages = [reading("sensor001", 0), b"garbage"]
    _, logs = run(
        event(*messages), multi_settings(), timestream=FakeTimestream(), sqs=FakeQueue(fail="all")
    )
    assert logs.reason_emf == {}  # they are retried, and counted when they get there


def test_no_quarantine_no_reason_documents():
    summary = report.BatchSummary(received=3, written=3)
    assert report.reason_emf(summary, "f", 0) == []
