"""Settings: validation rules, device registry and record layout (see SETTINGS.md).

Why a file rather than environment variables: the rules and the device registry are
structured and can hold thousands of devices (Lambda's environment is capped at 4 KB).
iotpipe's packager writes `settings.json` beside this module, so one immutable zip is one
deployment. Without a file the function applies the recipe's own rules, so the recipe's
zip-and-deploy path keeps working unchanged.

A malformed file is a deployment bug, not bad data: loading raises SettingsError and the
invocation fails (Kinesis retries), rather than guessing rules and writing wrong data.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from .contract import (
    BASE_DIMENSIONS,
    MAX_DIMENSION_NAME_BYTES,
    MAX_MAGNETIC_RETENTION_DAYS,
    MAX_MEASURE_NAME_BYTES,
    MAX_MEMORY_RETENTION_HOURS,
    MULTI_MEASURE_NAME,
    RECORD_MODELS,
    UNKNOWN_DEVICE_POLICIES,
    RecordModel,
    UnknownDevicePolicy,
    reserved_by_timestream,
)

SETTINGS_VERSION = 1
SETTINGS_ENV = "IOTPIPE_SETTINGS"
DEFAULT_PATH = Path(__file__).with_name("settings.json")

_MAX_DOUBLE = sys.float_info.max
_Choice = TypeVar("_Choice", bound=str)


class SettingsError(ValueError):
    """The settings file cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class SensorRule:
    """Valid range of one measure; a bound of None means unbounded on that side."""

    name: str
    min: float | None
    max: float | None
    inclusive: bool = True
    # The fast path's bounds (validate.check_measures): min/max, or the largest finite
    # double when unbounded - never infinity, so `lo <= inf <= hi` is false and an
    # Infinity falls through to the full check (not_a_number) instead of being written.
    lo: float = field(init=False, repr=False, compare=False)
    hi: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for bound in ("min", "max"):
            if getattr(self, bound) is not None:
                object.__setattr__(self, bound, float(getattr(self, bound)))
        object.__setattr__(self, "lo", -_MAX_DOUBLE if self.min is None else self.min)
        object.__setattr__(self, "hi", _MAX_DOUBLE if self.max is None else self.max)

    def violation(self, value: float) -> str | None:
        """None when `value` is inside the range, else a sentence saying why not."""
        lo, hi = self.min, self.max
        if self.inclusive:
            inside = (lo is None or value >= lo) and (hi is None or value <= hi)
        else:
            inside = (lo is None or value > lo) and (hi is None or value < hi)
        if inside:
            return None
        return f"{value!r} not in {self.describe()}"

    def describe(self) -> str:
        """The range in interval notation, e.g. `[0, 100]` or `(-50, 150)`."""
        left, right = ("[", "]") if self.inclusive else ("(", ")")
        lo = "-inf" if self.min is None else _num(self.min)
        hi = "inf" if self.max is None else _num(self.max)
        return f"{left}{lo}, {hi}{right}"


@dataclass(frozen=True, slots=True)
class RegistryEntry:
    """One registry entry: location, type and extra dimensions (name, value), sorted."""

    location: str | None = None
    device_type: str | None = None
    extra: tuple[tuple[str, str], ...] = ()


RECIPE_SENSORS: tuple[SensorRule, ...] = (
    # The recipe filters `temperature <= -50 or >= 150` (exclusive) and `0 <= humidity <= 100`.
    SensorRule("temperature", -50.0, 150.0, inclusive=False),
    SensorRule("humidity", 0.0, 100.0, inclusive=True),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the function needs besides the environment. Defaults = the recipe."""

    record_model: RecordModel = "single"
    sensors: tuple[SensorRule, ...] = RECIPE_SENSORS
    devices: Mapping[str, RegistryEntry] = field(default_factory=lambda: MappingProxyType({}))
    unknown_devices: UnknownDevicePolicy = "accept"
    default_location: str = "factory_floor_1"
    default_device_type: str = "temperature_sensor"
    numeric_strings: bool = False
    memory_retention_hours: int = 24
    magnetic_writes: bool = False
    magnetic_retention_days: int | None = None
    source: str = "built-in recipe defaults"
    # Per-container memo of identity checks and dimensions (see validate.identify).
    cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)


def settings_path(environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """Where to read settings from, and whether that path was asked for explicitly."""
    env = os.environ if environ is None else environ
    explicit = env.get(SETTINGS_ENV)
    if explicit:
        return Path(explicit), True
    return DEFAULT_PATH, False


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read settings from $IOTPIPE_SETTINGS or ./settings.json; recipe defaults if neither.

    An explicitly named file that does not exist is an error (a typo must not silently
    fall back to the recipe's rules); a missing default file is the recipe's zip.
    """
    path, explicit = settings_path(environ)
    if not path.is_file():
        if explicit:
            raise SettingsError(f"{SETTINGS_ENV}={path}: no such file")
        return Settings()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read settings: {exc}") from exc
    return from_dict(doc, source=str(path))


def from_dict(doc: Any, source: str = "<dict>") -> Settings:
    """Validate a settings document (version 1); keys it omits keep the recipe defaults."""
    if not isinstance(doc, dict):
        raise SettingsError(f"{source}: settings must be a JSON object")
    if doc.get("version") != SETTINGS_VERSION:
        raise SettingsError(f"{source}: version must be {SETTINGS_VERSION}")
    known = {
        "version",
        "record_model",
        "sensors",
        "devices",
        "unknown_devices",
        "defaults",
        "numeric_strings",
        "memory_retention_hours",
        "magnetic_writes",
        "magnetic_retention_days",
    }
    unknown = sorted(set(doc) - known)
    if unknown:
        raise SettingsError(f"{source}: unknown keys {unknown}")
    base = Settings()
    sensors = _sensors(doc["sensors"]) if "sensors" in doc else base.sensors
    measure_names = {s.name for s in sensors}
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise SettingsError("defaults: must be an object")
    retention = doc.get("memory_retention_hours", base.memory_retention_hours)
    if not _is_int(retention) or not 1 <= retention <= MAX_MEMORY_RETENTION_HOURS:
        raise SettingsError(f"memory_retention_hours: an integer 1-{MAX_MEMORY_RETENTION_HOURS}")
    magnetic_days = doc.get("magnetic_retention_days")
    if magnetic_days is not None and (
        not _is_int(magnetic_days) or not 1 <= magnetic_days <= MAX_MAGNETIC_RETENTION_DAYS
    ):
        raise SettingsError(
            f"magnetic_retention_days: an integer 1-{MAX_MAGNETIC_RETENTION_DAYS} or null"
        )
    return Settings(
        record_model=_choice(doc, "record_model", RECORD_MODELS, base.record_model),
        sensors=sensors,
        devices=MappingProxyType(_devices(doc.get("devices", {}), measure_names)),
        unknown_devices=_choice(
            doc, "unknown_devices", UNKNOWN_DEVICE_POLICIES, base.unknown_devices
        ),
        default_location=_default(defaults, "location", base.default_location),
        default_device_type=_default(defaults, "device_type", base.default_device_type),
        numeric_strings=_bool(doc, "numeric_strings", base.numeric_strings),
        memory_retention_hours=retention,
        magnetic_writes=_bool(doc, "magnetic_writes", base.magnetic_writes),
        magnetic_retention_days=magnetic_days,
        source=source,
    )


def _sensors(raw: Any) -> tuple[SensorRule, ...]:
    if not isinstance(raw, dict) or not raw:
        raise SettingsError("sensors: must be a non-empty object of measure -> range")
    rules = []
    for name, spec in raw.items():
        _check_name(f"sensors.{name}", name, MAX_MEASURE_NAME_BYTES)
        if name in BASE_DIMENSIONS or name == MULTI_MEASURE_NAME:
            raise SettingsError(f"sensors.{name}: clashes with a dimension or '{name}'")
        if not isinstance(spec, dict) or set(spec) - {"min", "max", "inclusive"}:
            raise SettingsError(f"sensors.{name}: an object with min, max, inclusive")
        lo, hi = _bound(name, spec, "min"), _bound(name, spec, "max")
        if lo is not None and hi is not None and lo > hi:
            raise SettingsError(f"sensors.{name}: min is greater than max")
        inclusive = spec.get("inclusive", True)
        if not isinstance(inclusive, bool):
            raise SettingsError(f"sensors.{name}.inclusive: true or false")
        rules.append(SensorRule(name, lo, hi, inclusive))
    return tuple(rules)


def _devices(raw: Any, measure_names: set[str]) -> dict[str, RegistryEntry]:
    if not isinstance(raw, dict):
        raise SettingsError("devices: must be an object of deviceId -> attributes")
    devices = {}
    for device_id, attrs in raw.items():
        if not isinstance(attrs, dict):
            raise SettingsError(f"devices.{device_id}: must be an object")
        extra = []
        for key, value in attrs.items():
            if key in ("location", "device_type") or value is None:
                continue
            _check_name(f"devices.{device_id}.{key}", key, MAX_DIMENSION_NAME_BYTES)
            if key in BASE_DIMENSIONS or key in measure_names:
                raise SettingsError(f"devices.{device_id}.{key}: clashes with a dimension")
            extra.append((key, _attr_text(f"devices.{device_id}.{key}", value)))
        loc, kind = attrs.get("location"), attrs.get("device_type")
        devices[str(device_id)] = RegistryEntry(
            location=None if loc is None else _attr_text(f"devices.{device_id}.location", loc),
            device_type=None
            if kind is None
            else _attr_text(f"devices.{device_id}.device_type", kind),
            extra=tuple(sorted(extra)),
        )
    return devices


def _check_name(where: str, name: Any, max_bytes: int) -> None:
    """Timestream's rules for measure and dimension names."""
    if not isinstance(name, str) or not name or len(name.encode("utf-8")) > max_bytes:
        raise SettingsError(f"{where}: name must be 1-{max_bytes} bytes")
    if reserved_by_timestream(name):
        raise SettingsError(f"{where}: '{name}' is reserved by Timestream")


def _bound(name: str, spec: dict, key: str) -> float | None:
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SettingsError(f"sensors.{name}.{key}: a finite number or null")
    return float(value)


def _attr_text(where: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        text = str(value).strip()
        if text:
            return text
    raise SettingsError(f"{where}: a non-empty string or number")


def _choice(doc: dict, key: str, allowed: tuple[_Choice, ...], default: _Choice) -> _Choice:
    value = doc.get(key, default)
    if value not in allowed:
        raise SettingsError(f"{key}: one of {', '.join(allowed)}")
    return value


def _bool(doc: dict, key: str, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise SettingsError(f"{key}: true or false")
    return value


def _default(defaults: dict, key: str, fallback: str) -> str:
    if key not in defaults:
        return fallback
    return _attr_text(f"defaults.{key}", defaults[key])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _num(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
