"""`iotpipe local status` at 80 columns: whole names, no "invoc…" columns (walkthrough find)."""

from __future__ import annotations

import io

from rich.console import Console

from iotpipe.cli.render_local import status_tables

STATUS = {
    "endpoint": "http://127.0.0.1:4566",
    "pid": 4242,
    "uptime_s": 12.0,
    "started_at": 0,
    "moto_version": "5.2.5",
    "counts": {"records_put": 10, "invocations": 2},
    "held": {"streams": 1, "stream_records": 10, "functions": 1},
    "functions": [
        {
            "name": "iot-telemetry-processor-abc123",
            "pid": 99,
            "invocations": 2,
            "errors": 0,
            "timeouts": 0,
            "crashes": 1,
            "restarts": 1,
            "last_error": "Runtime exited with error",
            "log": "/tmp/x/.iotpipe/functions/iot-telemetry-processor-abc123.log",
        }
    ],
    "mappings": [
        {
            "uuid": "fff71b8d-e9e1-4ee3-9f0a-3c1d2e4b5a69",
            "function": "iot-telemetry-processor-abc123",
            "state": "Enabled",
            "shards": 4,
            "last_result": "OK",
        }
    ],
}


def test_status_keeps_names_whole_at_80_columns() -> None:
    out = io.StringIO()
    status_tables(STATUS, Console(file=out, width=80, color_system=None))
    text = out.getvalue()
    assert "iot-telemetry-processor-abc123" in text
    assert "fff71b8d-e9e1-4ee3-9f0a-3c1d2e4b5a69" in text
    assert "crashes 1" in text and "Runtime exited with error" in text
    assert "1 stream (10 records)" in text
    assert "…" not in text.split("counts", 1)[-1].split("functions", 1)[-1]


def test_status_shows_each_delivery_stream_with_its_counts_and_last_error() -> None:
    data = {
        **STATUS,
        "delivery_streams": [
            {
                "name": "iot-telemetry-lake-abc123",
                "bucket": "iot-telemetry-abc123-123456789012-us-east-1",
                "received": 120,
                "delivered_rows": 110,
                "processing_failed": 10,
                "conversion_failed": 0,
                "objects": 3,
                "buffered": 0,
                "last_error": "NoSuchBucket: retrying",
            }
        ],
    }
    out = io.StringIO()
    status_tables(data, Console(file=out, width=80, color_system=None))
    text = out.getvalue()
    assert "iot-telemetry-lake-abc123" in text and "rows 110" in text
    assert "processing-failed 10" in text and "NoSuchBucket: retrying" in text
