"""The config's shape: one frozen dataclass per section, each field with its check.

Separate from :mod:`iotpipe.config` (which reads YAML and reports problems with file and
line) because everything else in iotpipe only needs the shape; the checks travel with the
fields (``spec``) so a new key is one line here and is validated by the same builder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, replace
from typing import Any

from iotpipe import checks
from lambda_handler.contract import (
    MAX_MAGNETIC_RETENTION_DAYS,
    MAX_MEMORY_RETENTION_HOURS,
    RECORD_MODELS,
    UNKNOWN_DEVICE_POLICIES,
)

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,22}[a-z0-9]$")
SUFFIX_RE = re.compile(r"^[a-z0-9]{4,8}$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
TABLE_RE = re.compile(r"^[A-Za-z0-9_.-]{3,256}$")
DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
KMS_KEY_RE = re.compile(  # an alias, a key id (incl. multi-Region mrk-), or either's ARN
    r"^(alias/[A-Za-z0-9/_-]{1,250}|(mrk-[0-9a-f]{32}|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})"
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key/[A-Za-z0-9-]{1,64}|alias/[A-Za-z0-9/_-]{1,250}))$"
)
PARTITION_KEY_RE = re.compile(r"^[A-Za-z0-9_.:()${}-]{1,256}$")
RUNTIMES = ("python3.12", "python3.13", "python3.14")
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827)


# --- sections -------------------------------------------------------------------------------


def spec(check: checks.Checker, default: Any = MISSING, **kw: Any) -> Any:
    if default is MISSING and "default_factory" not in kw:
        return field(metadata={"check": check})
    if "default_factory" in kw:
        return field(default_factory=kw["default_factory"], metadata={"check": check})
    return field(default=default, metadata={"check": check})


@dataclass(frozen=True)
class StreamConfig:
    mode: str = spec(checks.choice("on_demand", "provisioned"), "on_demand")
    shards: int = spec(checks.integer(1, 500), 1)
    retention_hours: int = spec(checks.integer(24, 8760), 24)
    kms_key: str = spec(
        checks.text(KMS_KEY_RE, "a KMS key: alias/<name>, a key id, or a key or alias ARN"),
        "alias/aws/kinesis",
    )


@dataclass(frozen=True)
class TimestreamConfig:
    table: str = spec(checks.text(TABLE_RE, "3-256 of A-Z a-z 0-9 _ . -"), "sensor-data")
    memory_retention_hours: int = spec(checks.integer(1, MAX_MEMORY_RETENTION_HOURS), 24)
    magnetic_retention_days: int = spec(checks.integer(1, MAX_MAGNETIC_RETENTION_DAYS), 365)
    magnetic_writes: bool = spec(checks.boolean, True)
    record_model: str = spec(checks.choice(*RECORD_MODELS), "multi")
    # False: no database, table, processor function or mapping (accounts without access).
    enabled: bool = spec(checks.boolean, True)


@dataclass(frozen=True)
class FunctionConfig:
    runtime: str = spec(checks.choice(*RUNTIMES), "python3.13")
    architecture: str = spec(checks.choice("arm64", "x86_64"), "arm64")
    memory_mb: int = spec(checks.integer(128, 10240), 256)
    timeout_s: int = spec(checks.integer(1, 900), 60)
    log_retention_days: int = spec(checks.integer_in(*LOG_RETENTION_DAYS), 14)


@dataclass(frozen=True)
class EventSourceConfig:
    batch_size: int = spec(checks.integer(1, 10000), 100)
    batching_window_s: int = spec(checks.integer(0, 300), 5)
    starting_position: str = spec(checks.choice("TRIM_HORIZON", "LATEST"), "TRIM_HORIZON")
    parallelization_factor: int = spec(checks.integer(1, 10), 1)
    max_retry_attempts: int = spec(checks.integer(0, 10000, also=(-1,)), 5)
    max_record_age_s: int = spec(checks.integer(60, 604800, also=(-1,)), 3600)
    bisect_on_error: bool = spec(checks.boolean, True)
    failure_queue: bool = spec(checks.boolean, True)


@dataclass(frozen=True)
class IotRuleConfig:
    topic: str = spec(checks.topic, "iot/sensors/+/data")
    partition_key: str = spec(
        checks.text(PARTITION_KEY_RE, "1-256 of letters, digits, _ . : - ( ) and ${...} templates"),
        "${deviceId}",
    )


@dataclass(frozen=True)
class SensorRange:
    min: float = spec(checks.number)
    max: float = spec(checks.number)
    inclusive: bool = spec(checks.boolean, True)


@dataclass(frozen=True)
class Device:
    location: str | None = None
    device_type: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidationConfig:
    unknown_devices: str = spec(checks.choice(*UNKNOWN_DEVICE_POLICIES), "accept")
    numeric_strings: bool = spec(checks.boolean, False)


@dataclass(frozen=True)
class LakeConfig:
    """The lake branch: Firehose -> S3 Parquet -> Glue -> Athena (REFERENCE.md part 2)."""

    enabled: bool = spec(checks.boolean, False)
    # Firehose's buffering: 60-900 s on AWS (dynamic partitioning forbids zero buffering;
    # the builder refuses < 60 for target aws), 1-900 on the embedded AWS so tests and the
    # demo need not wait a minute; 64-128 MiB (format conversion needs at least 64).
    buffer_s: int = spec(checks.integer(1, 900), 60)
    buffer_mb: int = spec(checks.integer(64, 128), 64)
    retention_days: int = spec(checks.integer(1, 36500), 365)
    # Athena's bytes-scanned cutoff per query; its minimum is 10 MB.
    scan_limit_gb: int = spec(checks.integer(1, 1_000_000), 10)


@dataclass(frozen=True)
class LegacyConfig:
    enabled: bool = spec(checks.boolean, False)


# The recipe's registry (its three devices and their locations), as config/iotpipe.yaml has it.
DEFAULT_DEVICES: dict[str, Device] = {
    dev_id: Device(location, "temperature_sensor", {"last_maintenance": maintained})
    for dev_id, location, maintained in (
        ("sensor001", "factory_floor_1", "2026-09-01"),
        ("sensor002", "factory_floor_2", "2026-08-15"),
        ("sensor003", "warehouse", "2026-10-02"),
    )
}
DEFAULT_SENSORS: dict[str, SensorRange] = {
    "temperature": SensorRange(-50, 150),
    "humidity": SensorRange(0, 100),
    "pressure": SensorRange(300, 1100),
    "vibration": SensorRange(0, 100),
}


@dataclass(frozen=True)
class Config:
    name: str = "iot-telemetry"
    suffix: str | None = None
    target: str = "local"
    region: str = "us-east-1"
    stream: StreamConfig = field(default_factory=StreamConfig)
    timestream: TimestreamConfig = field(default_factory=TimestreamConfig)
    function: FunctionConfig = field(default_factory=FunctionConfig)
    event_source: EventSourceConfig = field(default_factory=EventSourceConfig)
    iot_rule: IotRuleConfig = field(default_factory=IotRuleConfig)
    sensors: Mapping[str, SensorRange] = field(default_factory=lambda: dict(DEFAULT_SENSORS))
    devices: Mapping[str, Device] = field(default_factory=lambda: dict(DEFAULT_DEVICES))
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    lake: LakeConfig = field(default_factory=LakeConfig)
    legacy: LegacyConfig = field(default_factory=LegacyConfig)
    tags: Mapping[str, str] = field(default_factory=dict)
    source: str = "<defaults>"

    def with_overrides(self, **changes: Any) -> Config:
        return replace(self, **changes)
