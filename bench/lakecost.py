"""A monthly cost model of the two store branches at a given message rate (pure; no AWS).

Prices are us-east-1 list prices as collected in ../shared/REFERENCE.md ("Prices", researched
2026-12-01) and, where that table says only "extra per GB and per object", AWS's Firehose
pricing page as last read (dynamic partitioning $0.020/GB and $0.005 per 1,000 objects).
Check the pricing pages before quoting a bill: this is a model, its assumptions are the
arguments below, and ``bench/lake.py`` prints them with the result.
"""

from __future__ import annotations

from dataclasses import dataclass

SECONDS_PER_MONTH = 30 * 86_400
HOURS_PER_MONTH = 730

# Shared ingest (both branches): IoT Core and the Kinesis stream.
IOT_PER_MILLION = 1.00  # messaging, metered per 5 KB
IOT_RULES_PER_MILLION = 0.15 + 0.15  # rule triggered + one action
KINESIS_STREAM_HOUR = 0.04  # on-demand
KINESIS_IN_PER_GB = 0.08
KINESIS_OUT_PER_GB = 0.04  # per consumer
LAMBDA_PER_MILLION = 0.20
LAMBDA_PER_GB_S = 0.0000166667
# Timestream for LiveAnalytics.
TS_WRITE_PER_MILLION_KB = 0.50
TS_MEMORY_GB_HOUR = 0.036
TS_MAGNETIC_GB_MONTH = 0.03
# The lake.
FIREHOSE_PER_GB = 0.029  # billed in 5 KB increments per record
FIREHOSE_CONVERSION_PER_GB = 0.018
FIREHOSE_PARTITIONING_PER_GB = 0.020
FIREHOSE_PER_1000_OBJECTS = 0.005
S3_GB_MONTH = 0.023
S3_PUT_PER_1000 = 0.005
ATHENA_PER_TB = 5.0


@dataclass(frozen=True)
class Assumptions:
    rate: float = 1000.0  # messages per second, sustained
    message_bytes: int = 200  # the fleet's JSON messages are 150-250 bytes
    kinesis_batch: int = 100  # the processor's batch size
    lambda_ms: float = 40.0  # per invocation (bench/handler.py measures ~0.2 ms/message)
    lambda_gb: float = 0.25
    ts_memory_hours: int = 24
    ts_row_bytes: int = 120  # a multi-measure record as stored
    parquet_ratio: float = 0.15  # Parquet bytes / JSON bytes (bench/lake.py measures it)
    partitions_per_flush: int = 1  # one hour is written at a time
    buffer_s: int = 60
    athena_tb_scanned: float = 1.0  # a month of dashboards and ad-hoc queries


def _gb(n_bytes: float) -> float:
    return n_bytes / 1e9


def shared(a: Assumptions) -> dict[str, float]:
    """IoT Core and Kinesis: the same in both branches."""
    msgs = a.rate * SECONDS_PER_MONTH
    volume = _gb(msgs * a.message_bytes)
    return {
        "IoT messaging": msgs / 1e6 * IOT_PER_MILLION,
        "IoT rules": msgs / 1e6 * IOT_RULES_PER_MILLION,
        "Kinesis stream-hours": HOURS_PER_MONTH * KINESIS_STREAM_HOUR,
        "Kinesis data in": volume * KINESIS_IN_PER_GB,
    }


def timestream_branch(a: Assumptions) -> dict[str, float]:
    msgs = a.rate * SECONDS_PER_MONTH
    invocations = msgs / a.kinesis_batch
    stored = _gb(a.rate * 3600 * a.ts_memory_hours * a.ts_row_bytes)
    return {
        "Kinesis data out (processor)": _gb(msgs * a.message_bytes) * KINESIS_OUT_PER_GB,
        "Lambda processor": invocations / 1e6 * LAMBDA_PER_MILLION
        + invocations * a.lambda_ms / 1000 * a.lambda_gb * LAMBDA_PER_GB_S,
        "Timestream writes (1 KB units)": msgs / 1e6 * TS_WRITE_PER_MILLION_KB,
        "Timestream memory store": stored * HOURS_PER_MONTH * TS_MEMORY_GB_HOUR,
        "Timestream magnetic (1st month)": _gb(msgs * a.ts_row_bytes) * TS_MAGNETIC_GB_MONTH,
    }


def lake_branch(a: Assumptions) -> dict[str, float]:
    msgs = a.rate * SECONDS_PER_MONTH
    json_bytes = msgs * a.message_bytes
    billed = _gb(msgs * max(5000, a.message_bytes))  # 5 KB increments per record
    objects = SECONDS_PER_MONTH / a.buffer_s * a.partitions_per_flush
    invocations = json_bytes / 1e6  # Firehose hands the transform 1 MB at a time
    return {
        "Kinesis data out (Firehose)": _gb(json_bytes) * KINESIS_OUT_PER_GB,
        "Firehose ingestion (5 KB units)": billed * FIREHOSE_PER_GB,
        "Firehose Parquet conversion": billed * FIREHOSE_CONVERSION_PER_GB,
        "Firehose dynamic partitioning": _gb(json_bytes) * FIREHOSE_PARTITIONING_PER_GB
        + objects / 1000 * FIREHOSE_PER_1000_OBJECTS,
        "Lambda transform": invocations / 1e6 * LAMBDA_PER_MILLION
        + invocations * 2.0 * a.lambda_gb * LAMBDA_PER_GB_S,
        "S3 storage (1st month)": _gb(json_bytes * a.parquet_ratio) * S3_GB_MONTH,
        "S3 PUTs": objects / 1000 * S3_PUT_PER_1000,
        "Athena scans": a.athena_tb_scanned * ATHENA_PER_TB,
    }


def monthly(a: Assumptions) -> dict[str, dict[str, float]]:
    """Per branch, per line item, USD per month."""
    return {"shared ingest": shared(a), "timestream": timestream_branch(a), "lake": lake_branch(a)}
