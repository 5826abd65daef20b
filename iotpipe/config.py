"""The YAML config, validated into frozen dataclasses.

Every problem is reported with file, line, dotted key and what is allowed, all of them at
once, before any AWS call: a config that AWS would refuse half-way through ``up`` is a
config we refuse up front. Name rules are the strictest of the services a name flows into
(an IAM role name is 64 characters, an IoT rule name is ``[A-Za-z0-9_]``, the topic ends up
inside single quotes in the rule's SQL), so nothing can break out of an ARN, a policy or SQL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from iotpipe import checks
from iotpipe.checks import cut, shown
from iotpipe.yamlsource import Located, YamlProblem, read_located
from lambda_handler.contract import (
    MAX_MAGNETIC_RETENTION_DAYS,
    MAX_MEMORY_RETENTION_HOURS,
    RECORD_MODELS,
    UNKNOWN_DEVICE_POLICIES,
)

DEFAULT_PATHS = (Path("iotpipe.yaml"), Path("config/iotpipe.yaml"))

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


class ConfigError(Exception):
    """One or more problems with the config; ``problems`` are ready-to-print lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Where:
    """Where a value came from, for error messages."""

    file: str
    line: int
    key: str

    def problem(self, message: str) -> str:
        key = ".".join(cut(part, 40) for part in self.key.split("."))
        return f"{self.file}:{self.line}: {key}: {message}"


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
    legacy: LegacyConfig = field(default_factory=LegacyConfig)
    tags: Mapping[str, str] = field(default_factory=dict)
    source: str = "<defaults>"

    def with_overrides(self, **changes: Any) -> Config:
        return replace(self, **changes)


_TOP_SCALARS: dict[str, checks.Checker] = {
    "name": checks.text(NAME_RE, "2-24 of a-z 0-9 -, starting with a letter, not ending with -"),
    "suffix": checks.text(SUFFIX_RE, "4-8 of a-z 0-9, or null to generate one"),
    "target": checks.choice("local", "aws"),
    "region": checks.text(REGION_RE, "an AWS Region code such as us-east-1"),
}
_SECTIONS: dict[str, type] = {
    "stream": StreamConfig,
    "timestream": TimestreamConfig,
    "function": FunctionConfig,
    "event_source": EventSourceConfig,
    "iot_rule": IotRuleConfig,
    "validation": ValidationConfig,
    "legacy": LegacyConfig,
}
_REGISTRY_FIELDS = ("location", "device_type")  # a device's keys that are not attributes
_ALL_KEYS = [*_TOP_SCALARS, *_SECTIONS, "sensors", "devices", "tags"]


class _Builder:
    """Walks the loaded YAML, collecting every problem rather than stopping at the first."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[str] = []
        # Device attributes become dimensions: checked against the sensors once both are read.
        self.attributes: list[tuple[str, Where]] = []

    def where(self, parent: Located, key: str, path: str) -> Where:
        return Where(self.file, parent.line_of(key) if isinstance(parent, Located) else 0, path)

    def mapping(self, value: Any, where: Where, keys: str = "") -> Located | None:
        if value is None:
            return Located()
        if not isinstance(value, dict):
            allowed = f"; allowed: a mapping of {keys}" if keys else "; allowed: a mapping"
            self.problems.append(where.problem(f"{shown(value)} is not a mapping{allowed}"))
            return None
        return value  # type: ignore[return-value]

    def section(self, cls: type, raw: Any, where: Where) -> Any:
        """The section's dataclass, or None when there were problems (already recorded)."""
        data = self.mapping(raw, where, ", ".join(f.name for f in fields(cls)))
        if data is None:
            return None
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            w = self.where(data, key, f"{where.key}.{key}")
            if key not in known:
                self.problems.append(w.problem(f"unknown key; allowed: {', '.join(sorted(known))}"))
                continue
            try:
                values[key] = known[key].metadata["check"](value)
            except checks.Bad as bad:
                self.problems.append(w.problem(str(bad)))
        missing = [
            n
            for n, f in known.items()
            if n not in values
            and n not in data
            and f.default is MISSING
            and f.default_factory is MISSING
        ]
        for name in missing:
            self.problems.append(where.problem(f"'{name}' is required"))
        if missing or any(k in known and k not in values for k in data):
            return None
        return cls(**values)

    def sensors(self, raw: Any, where: Where) -> dict[str, SensorRange]:
        data = self.mapping(raw, where)
        if data is None:
            return {}
        out: dict[str, SensorRange] = {}
        for name, spec_ in data.items():
            w = self.where(data, name, f"sensors.{name}")
            try:
                checks.measure_name(name)
            except checks.Bad as bad:
                self.problems.append(w.problem(str(bad)))
                continue
            rng = self.section(SensorRange, spec_, w)
            if rng is None:
                continue
            if rng.min >= rng.max:
                self.problems.append(w.problem(f"min ({rng.min}) must be below max ({rng.max})"))
                continue
            out[name] = rng
        if not out and not self.problems:
            self.problems.append(where.problem("at least one sensor measure is required"))
        return out

    def devices(self, raw: Any, where: Where) -> dict[str, Device]:
        data = self.mapping(raw, where)
        if data is None:
            return {}
        out: dict[str, Device] = {}
        for dev_id, attrs in data.items():
            w = self.where(data, dev_id, f"devices.{dev_id}")
            if not DEVICE_ID_RE.fullmatch(dev_id):
                self.problems.append(w.problem("device ids allow 1-128 of A-Z a-z 0-9 _ . : -"))
                continue
            attrs_map = self.mapping(attrs, w)
            if attrs_map is None:
                continue
            clean: dict[str, str] = {}
            for key, value in attrs_map.items():
                kw = self.where(attrs_map, key, f"devices.{dev_id}.{key}")
                try:
                    checks.attribute_name(key)
                except checks.Bad as bad:
                    self.problems.append(kw.problem(str(bad)))
                    continue
                if not isinstance(value, str | int | float) or isinstance(value, bool):
                    self.problems.append(kw.problem(f"{shown(value)} is not a text value"))
                elif not str(value).strip() or len(str(value).encode()) > 2048:
                    self.problems.append(kw.problem("values must be 1-2048 bytes, not blank"))
                else:
                    clean[key] = str(value)
                    if key not in _REGISTRY_FIELDS:
                        self.attributes.append((key, kw))
            location, device_type = (clean.pop(k, None) for k in _REGISTRY_FIELDS)
            out[dev_id] = Device(location, device_type, clean)
        return out

    def clashes(self, sensors: Mapping[str, SensorRange]) -> None:
        """A dimension named like a measure: the function's settings refuse the pair."""
        for key, where in self.attributes:
            if key in sensors:
                self.problems.append(
                    where.problem("is also a sensor name; allowed: an attribute name no sensor has")
                )

    def tags(self, raw: Any, where: Where) -> dict[str, str]:
        data = self.mapping(raw, where)
        if data is None:
            return {}
        out: dict[str, str] = {}
        for key, value in data.items():
            w = self.where(data, key, f"tags.{key}")
            try:
                out[key] = checks.tag(key, value)
            except checks.Bad as bad:
                self.problems.append(w.problem(str(bad)))
        if len(out) > 40:
            self.problems.append(where.problem("at most 40 tags (iotpipe adds its own)"))
        return out


def parse(raw: Any, file: str = "<config>") -> Config:
    """Validate an already-loaded YAML document. Raises :class:`ConfigError`."""
    b = _Builder(file)
    top = b.mapping(raw, Where(file, 1, "(top level)"))
    if top is None:
        raise ConfigError(b.problems)
    values: dict[str, Any] = {"source": file}
    for key, value in top.items():
        w = b.where(top, key, key)
        if key in _TOP_SCALARS:
            if key == "suffix" and value is None:
                continue
            try:
                values[key] = _TOP_SCALARS[key](value)
            except checks.Bad as bad:
                b.problems.append(w.problem(str(bad)))
        elif key in _SECTIONS:
            built = b.section(_SECTIONS[key], value, w)
            if built is not None:
                values[key] = built
        elif key == "sensors":
            values[key] = b.sensors(value, w)
        elif key == "devices":
            values[key] = b.devices(value, w)
        elif key == "tags":
            values[key] = b.tags(value, w)
        else:
            b.problems.append(w.problem(f"unknown key; allowed: {', '.join(_ALL_KEYS)}"))
    b.clashes(values.get("sensors", DEFAULT_SENSORS))
    if b.problems:
        raise ConfigError(b.problems)
    return Config(**values)


def find_config(explicit: str | None) -> Path | None:
    """The config file to use: ``-c`` if given, else the first default path that exists."""
    if explicit:
        return Path(explicit)
    return next((p for p in DEFAULT_PATHS if p.is_file()), None)


def load(path: Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; ``None`` means the built-in defaults."""
    if path is None:
        return Config()
    try:
        raw = read_located(path, environ if environ is not None else os.environ)
    except YamlProblem as problem:
        key = f" {cut(problem.key, 40)}:" if problem.key else ""
        line = f"{problem.line}:" if problem.line else ""
        raise ConfigError([f"{path}:{line}{key} {problem.message}"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    return parse(raw, str(path))
