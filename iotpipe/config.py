"""The YAML config, validated into frozen dataclasses.

Every problem is reported with file, line, dotted key and what is allowed, all of them at
once, before any AWS call: a config that AWS would refuse half-way through ``up`` is a
config we refuse up front. Name rules are the strictest of the services a name flows into
(an IAM role name is 64 characters, an IoT rule name is ``[A-Za-z0-9_]``, the topic ends up
inside single quotes in the rule's SQL), so nothing can break out of an ARN, a policy or SQL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from iotpipe import checks
from iotpipe.checks import cut, shown
from iotpipe.configmodel import (  # re-exported: the rest of iotpipe imports them from here
    DEFAULT_SENSORS,
    DEVICE_ID_RE,
    NAME_RE,
    REGION_RE,
    SUFFIX_RE,
    Config,
    Device,
    EventSourceConfig,
    FunctionConfig,
    IotRuleConfig,
    LakeConfig,
    LegacyConfig,
    SensorRange,
    StreamConfig,
    TimestreamConfig,
    ValidationConfig,
)
from iotpipe.yamlsource import Located, YamlProblem, read_located
from lambda_handler.lakerow import LAKE_RESERVED

DEFAULT_PATHS = (Path("iotpipe.yaml"), Path("config/iotpipe.yaml"))


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
    "lake": LakeConfig,
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

    def stores(self, values: dict[str, Any], top: Located) -> None:
        """At least one store, and no measure or attribute named like a lake column."""
        ts = values.get("timestream", TimestreamConfig())
        lake = values.get("lake", LakeConfig())
        if not ts.enabled and not lake.enabled:
            key = "timestream" if "timestream" in top else "lake"
            self.problems.append(
                self.where(top, key, "timestream.enabled").problem(
                    "false with lake.enabled false: nothing would store the telemetry; "
                    "allowed: timestream.enabled true, lake.enabled true, or both"
                )
            )
        if not lake.enabled:
            return
        if values.get("target", "local") == "aws" and lake.buffer_s < 60:
            self.problems.append(
                self.where(top.get("lake") or top, "buffer_s", "lake.buffer_s").problem(
                    f"{lake.buffer_s} is below Firehose's 60 s with dynamic partitioning; "
                    "allowed on target aws: 60-900 (1-900 on the embedded AWS)"
                )
            )
        sensors = values.get("sensors", DEFAULT_SENSORS)
        for name in sensors:
            if name.lower() in LAKE_RESERVED:
                self.problems.append(
                    self.where(top.get("sensors") or top, name, f"sensors.{name}").problem(
                        f"is a column of the lake's table; allowed: a name other than "
                        f"{', '.join(sorted(LAKE_RESERVED))}"
                    )
                )
        for key, where in self.attributes:
            if key.lower() in LAKE_RESERVED:
                self.problems.append(where.problem("is a column of the lake's table"))

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
    b.stores(values, top)
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
