"""The lake's layout: columns, partitions, prefixes, one place for every side that needs them.

Why one pure module: five parts must agree on the same names (the transform's rows,
the Glue table, Firehose's prefixes, Athena's SQL and the embedded AWS's Parquet writer),
and any mismatch loses data quietly: Firehose's format conversion drops a JSON key that
has no column, and Athena finds nothing under a prefix the projection does not name.

The row the transform returns is flat JSON: ``time`` (UTC, ``yyyy-MM-dd HH:mm:ss.SSS``,
the form Firehose's OpenX JSON SerDe and Hive's timestamp parser both accept),
``device_id``, ``location``, ``device_type``, one string per registry attribute and one
double per configured measure; names are lower case (the SerDe lower-cases keys).
Partitions come from the **event** time (``dt`` = yyyy-MM-dd, ``hour`` = 00-23), never
from Firehose's arrival time, so late data lands in the hour it describes.
"""

from __future__ import annotations

from iotpipe.config import Config
from lambda_handler import lakerow

DATA_PREFIX = "data/"
ERROR_PREFIX = "errors/"
RESULTS_PREFIX = "athena-results/"
# Firehose evaluates these; the embedded AWS does too (local/firehose*).
FIREHOSE_PREFIX = "data/dt=!{partitionKeyFromLambda:dt}/hour=!{partitionKeyFromLambda:hour}/"
FIREHOSE_ERROR_PREFIX = "errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
# What Firehose writes under errors/ for a record the transform marked ProcessingFailed.
PROCESSING_FAILED = "processing-failed"
FORMAT_CONVERSION_FAILED = "format-conversion-failed"

# Glue types of the base and partition columns (names from the function's `lakerow`).
_BASE_TYPES = {"time": "timestamp"}
BASE_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (name, _BASE_TYPES.get(name, "string")) for name in lakerow.BASE_COLUMNS
)
PARTITION_KEYS: tuple[tuple[str, str], ...] = (("dt", "string"), ("hour", "int"))
LAKE_RESERVED = lakerow.LAKE_RESERVED

PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


column_name = lakerow.column


def attribute_names(config: Config) -> list[str]:
    """Every registry attribute any configured device has, as columns, sorted."""
    names = {column_name(k) for dev in config.devices.values() for k in dev.attributes}
    return sorted(names - LAKE_RESERVED)


def measure_names(config: Config) -> list[str]:
    """The configured measures, as columns, in config order."""
    return [column_name(m) for m in config.sensors]


def columns(config: Config) -> list[tuple[str, str]]:
    """The table's data columns (Glue types): base, attributes, then measures."""
    return [
        *BASE_COLUMNS,
        *((a, "string") for a in attribute_names(config)),
        *((m, "double") for m in measure_names(config)),
    ]


def data_location(bucket: str) -> str:
    return f"s3://{bucket}/{DATA_PREFIX}"


def results_location(bucket: str) -> str:
    return f"s3://{bucket}/{RESULTS_PREFIX}"


def projection(bucket: str, retention_days: int) -> dict[str, str]:
    """Partition projection: Athena computes partitions from these, so no crawler, no
    ``MSCK REPAIR``, no partition to register after each hour (REFERENCE.md section 4).
    The date range runs a day past now: the function accepts event times slightly ahead."""
    return {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": f"NOW-{retention_days}DAYS,NOW+1DAYS",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "projection.hour.type": "integer",
        "projection.hour.range": "0,23",
        "projection.hour.digits": "2",
        "storage.location.template": f"{data_location(bucket)}dt=${{dt}}/hour=${{hour}}/",
    }
