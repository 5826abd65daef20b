"""A simulated sensor fleet: reproducible telemetry, with labelled invalid messages mixed in.

Pure (no AWS, no clock): the caller passes the start time and a seed, so the same arguments
always give the same bytes. That is what lets tests compute the aggregates ``query`` must
return, and lets an operator replay a run exactly with ``--seed``.

Values follow a mean-reverting random walk (Ornstein-Uhlenbeck) around a per-device baseline
plus sensor noise: they drift like real sensors instead of jumping around uniformly, and
they stay inside the configured valid range, so every message not labelled invalid is one
the function must accept in full.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from iotpipe.config import Config, Device, SensorRange
from iotpipe.errors import UsageError
from iotpipe.replay import lines as replay_lines
from iotpipe.replay import replay

# The recipe's three devices (step 9) and the device it uses to test validation.
RECIPE_DEVICES = (
    ("sensor001", "factory_floor_1"),
    ("sensor002", "factory_floor_2"),
    ("sensor003", "warehouse"),
)
RECIPE_INVALID = {"deviceId": "invalid001", "temperature": 999, "humidity": 150}
DEVICE_TYPES = ("temperature", "humidity", "pressure", "vibration")
LOCATIONS = tuple(loc for _, loc in RECIPE_DEVICES)
# Every type also reports the recipe's companion measure(s), as real multi-sensors do.
TYPE_MEASURES = {
    "temperature": ("temperature", "humidity"),
    "humidity": ("humidity", "temperature"),
    "pressure": ("pressure", "temperature"),
    "vibration": ("vibration", "temperature"),
}
# How invalid messages are made, with their share of the injected ones.
INVALID_KINDS = (
    ("out_of_range", 0.5),
    ("malformed_json", 0.2),
    ("not_an_object", 0.1),
    ("not_a_number", 0.1),
    ("missing_device_id", 0.1),
)


@dataclass(frozen=True)
class Profile:
    """How one measure behaves: baseline band, random-walk step, noise, reversion, decimals."""

    low: float
    high: float
    step: float
    noise: float
    reversion: float = 0.05
    decimals: int = 2


PROFILES: dict[str, Profile] = {
    "temperature": Profile(18.0, 30.0, 0.15, 0.05, decimals=2),  # deg C
    "humidity": Profile(35.0, 65.0, 0.4, 0.2, decimals=1),  # % RH
    "pressure": Profile(1000.0, 1025.0, 0.3, 0.1, decimals=1),  # hPa
    "vibration": Profile(1.0, 8.0, 0.2, 0.3, reversion=0.2, decimals=3),  # mm/s RMS
}


def _generic_profile(rng: SensorRange) -> Profile:
    """A measure the config added: the middle fifth of its range, modest steps."""
    span = rng.max - rng.min
    return Profile(rng.min + span * 0.4, rng.min + span * 0.6, span * 0.005, span * 0.002)


@dataclass(frozen=True)
class SimDevice:
    device_id: str
    location: str
    device_type: str


@dataclass(frozen=True)
class Message:
    """One message to send. ``invalid`` is None for a valid message, else how it was broken."""

    device_id: str
    data: bytes
    timestamp: str
    values: Mapping[str, float] = field(default_factory=dict)
    invalid: str | None = None

    @property
    def partition_key(self) -> str:
        return self.device_id


def default_devices(count: int | None, registry: Mapping[str, Device]) -> list[SimDevice]:
    """The recipe's sensor001-003 by default; ``count`` devices sensor001..N otherwise.

    Locations and types come from the config's device registry where it knows the device,
    else they cycle through the recipe's locations and the four device types.
    """
    if count is None:
        return [_device(dev_id, 0, registry, loc) for dev_id, loc in RECIPE_DEVICES]
    if count < 1:
        raise ValueError("a fleet needs at least one device")
    width = max(3, len(str(count)))
    return [_device(f"sensor{i + 1:0{width}d}", i, registry) for i in range(count)]


def _device(
    dev_id: str, index: int, registry: Mapping[str, Device], location: str | None = None
) -> SimDevice:
    known = registry.get(dev_id)
    loc = (known.location if known else None) or location or LOCATIONS[index % len(LOCATIONS)]
    dtype = _type_of(known.device_type if known else None) or DEVICE_TYPES[index % 4]
    return SimDevice(dev_id, loc, dtype)


def _type_of(registry_type: str | None) -> str | None:
    """``temperature_sensor`` in the registry means the simulator's ``temperature`` type."""
    return next((t for t in DEVICE_TYPES if registry_type and t in registry_type.lower()), None)


def iso_ms(when: datetime) -> str:
    """The recipe's timestamp form: ``2026-11-27T01:02:03.123Z``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def iso_ms_series(start: datetime, interval: timedelta, count: int) -> Iterator[str]:
    """``iso_ms(start + interval * k)`` for k < count, in integer microseconds.

    Why: formatting a datetime per message was a sixth of send-test's generating thread;
    messages a millisecond apart share their date-and-seconds prefix, formatted once."""
    at = (start.astimezone(UTC) - _EPOCH) // _US
    step = interval // _US
    second, prefix = None, ""
    for _ in range(count):
        sec, us = divmod(at, 1_000_000)
        if sec != second:
            second = sec
            prefix = (_EPOCH + timedelta(seconds=sec)).strftime("%Y-%m-%dT%H:%M:%S.")
        yield f"{prefix}{us // 1000:03d}Z"
        at += step


class Fleet:
    """Devices with their own random walks; ``messages()`` interleaves them round-robin."""

    def __init__(
        self, devices: list[SimDevice], sensors: Mapping[str, SensorRange], seed: int
    ) -> None:
        self.devices = devices
        self.sensors = sensors
        self.seed = seed
        self._walks = [self._walk(d) for d in devices]

    def _walk(self, device: SimDevice) -> Iterator[dict[str, float]]:
        """Endless readings of one device; its own RNG, so adding devices changes no other."""
        rng = random.Random(f"{self.seed}:{device.device_id}")
        measures = [m for m in TYPE_MEASURES[device.device_type] if m in self.sensors]
        profiles = {m: PROFILES.get(m) or _generic_profile(self.sensors[m]) for m in measures}
        base = {m: rng.uniform(p.low, p.high) for m, p in profiles.items()}
        level = dict(base)
        while True:
            reading = {}
            for m, p in profiles.items():
                level[m] += p.reversion * (base[m] - level[m]) + rng.gauss(0, p.step)
                value = round(level[m] + rng.gauss(0, p.noise), p.decimals)
                reading[m] = self._clamp(m, value, p.decimals)
            yield reading

    def _clamp(self, measure: str, value: float, decimals: int) -> float:
        """Keep a valid reading strictly valid, also for exclusive ranges."""
        rng = self.sensors[measure]
        margin = 10**-decimals if not rng.inclusive else 0.0
        return min(max(value, rng.min + margin), rng.max - margin)

    def messages(
        self,
        count: int,
        start: datetime,
        interval: timedelta,
        invalid_ratio: float = 0.0,
    ) -> Iterator[Message]:
        """``count`` messages, message k stamped ``start + k * interval``.

        With ``invalid_ratio`` > 0 the recipe's invalid001 message comes once, after the
        first round of devices, and other messages are replaced by broken ones with that
        probability. Generation is lazy: a long run never holds all messages in memory.
        """
        bad = random.Random(f"{self.seed}:invalid")
        recipe_at = min(len(self.devices), count - 1) if invalid_ratio > 0 and count > 1 else -1
        kinds = tuple(kind for kind, _ in INVALID_KINDS)
        weights = tuple(weight for _, weight in INVALID_KINDS)
        n = len(self.devices)
        for k, when in enumerate(iso_ms_series(start, interval, count)):
            device = self.devices[k % n]
            reading = next(self._walks[k % n])
            if k == recipe_at:
                yield _recipe_invalid(when)
            elif invalid_ratio > 0 and bad.random() < invalid_ratio:
                kind = bad.choices(kinds, weights)[0]
                yield _broken(kind, device, when, reading, self.sensors, bad)
            else:
                payload = {"deviceId": device.device_id, "timestamp": when, **reading}
                payload["location"] = device.location
                yield Message(device.device_id, _dumps(payload), when, reading)


def _dumps(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _recipe_invalid(when: str) -> Message:
    payload = {"timestamp": when, **RECIPE_INVALID}
    return Message("invalid001", _dumps(payload), when, invalid="recipe_invalid001")


def _broken(
    kind: str,
    device: SimDevice,
    when: str,
    reading: Mapping[str, float],
    sensors: Mapping[str, SensorRange],
    rng: random.Random,
) -> Message:
    """A message broken in one labelled way; nothing in it is valid, so none of it is written."""
    base: dict[str, object] = {"deviceId": device.device_id, "timestamp": when}
    if kind == "out_of_range":
        for m in reading:
            r = sensors[m]
            span = r.max - r.min
            above = rng.random() < 0.5
            base[m] = round(r.max + span * rng.uniform(0.1, 5) if above else r.min - span, 2)
        data = _dumps(base)
    elif kind == "malformed_json":
        text = _dumps({**base, **reading}).decode()
        data = text[: rng.randint(5, len(text) - 2)].encode()
    elif kind == "not_an_object":
        data = _dumps([base["deviceId"], when, *reading.values()])
    elif kind == "not_a_number":
        data = _dumps({**base, **{m: "n/a" for m in reading}})
    elif kind == "missing_device_id":
        data = _dumps({"timestamp": when, **reading})
    else:  # pragma: no cover - INVALID_KINDS and this function change together
        raise ValueError(kind)
    return Message(device.device_id, data, when, invalid=kind)


def timing(count: int, rate: float | None, now: datetime) -> tuple[datetime, timedelta]:
    """Start and spacing of message timestamps.

    Every message gets its own millisecond (Timestream rejects a second, different value at
    the same time, device and measure), and no timestamp lies in the future (Timestream
    rejects those too). Paced at <= 1,000/s, timestamps follow the real sending time;
    faster, they are spaced 1 ms apart and end now.
    """
    interval = timedelta(seconds=max(1.0 / rate, 0.001)) if rate else timedelta(milliseconds=1)
    if rate and rate <= 1000:
        return now, interval
    return now - interval * count, interval


# --- send-test's options -> messages -------------------------------------------------------

DEFAULT_MESSAGES = 100
DEFAULT_INVALID_RATIO = 0.03
# Bounds that keep every count, timestamp and schedule representable (a datetime ends in
# 9999, ``round(1e12 * 1e12)`` messages is no test run) and a run within a week.
MAX_MESSAGES = 10_000_000
MAX_RATE = 1_000_000.0
MAX_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class SendOptions:
    """``send-test``'s options; None means "not given" so conflicts can be reported."""

    devices: int | None = None
    messages: int | None = None
    duration: float | None = None
    rate: float | None = None
    seed: int | None = None
    invalid_ratio: float | None = None
    via: str = "kinesis"
    file: Path | None = None
    workers: int = 4

    def count(self) -> int | None:
        """How many messages will go (None: as many as the file has)."""
        if self.duration is not None:
            total = self.duration * (self.rate or 0)
            return max(1, round(total)) if math.isfinite(total) else MAX_MESSAGES + 1
        if self.messages is not None:
            return self.messages
        return None if self.file else DEFAULT_MESSAGES

    def check(self) -> None:
        self._check_bounds()
        if self.messages is not None and self.duration is not None:
            raise UsageError("Give --messages or --duration, not both.")
        if self.duration is not None and not self.rate:
            raise UsageError("--duration needs --rate (messages per second).")
        fleet_only = {
            "--devices": self.devices,
            "--duration": self.duration,
            "--seed": self.seed,
            "--invalid-ratio": self.invalid_ratio,
        }
        given = [k for k, v in fleet_only.items() if v is not None]
        if self.file and given:
            raise UsageError(f"--file replays captured messages; {', '.join(given)} do not apply.")
        if self.invalid_ratio is not None and not 0 <= self.invalid_ratio <= 1:
            raise UsageError("--invalid-ratio is a fraction from 0 to 1, e.g. 0.05.")

    def _check_bounds(self) -> None:
        """nan, inf and astronomic values are refused here: written as ``not a <= x <= b``
        so that nan, which compares false to everything, fails too."""
        if self.rate is not None and not 0 < self.rate <= MAX_RATE:
            raise UsageError(
                f"--rate is messages per second, above 0 and at most {MAX_RATE:,.0f} "
                "(leave it out to send as fast as the stream takes them)."
            )
        if self.duration is not None and not 0 < self.duration <= MAX_SECONDS:
            raise UsageError(
                f"--duration is seconds, above 0 and at most {MAX_SECONDS:,} (7 days)."
            )
        count = self.count()
        if count is not None and count > MAX_MESSAGES:
            raise UsageError(
                f"That is {count:,} messages; a run sends at most {MAX_MESSAGES:,} "
                "(run it again for more)."
            )
        if count is not None and self.rate and count / self.rate > MAX_SECONDS:
            raise UsageError(
                f"{count:,} messages at --rate {self.rate:g}/s take "
                f"{count / self.rate / 86400:,.1f} days; a run lasts at most 7 days."
            )


def message_source(
    config: Config,
    opts: SendOptions,
    seed: int,
    now: datetime,
    device_ids: list[str] | None = None,
) -> Iterator[Message]:
    """The simulated fleet (or the replayed file), lazily. ``device_ids``: these devices
    (the identities `--via mqtt` sends as) unless ``--devices`` says how many."""
    if opts.file is not None:
        return replay_file(opts.file, opts.messages, opts.via)
    count = opts.count() or DEFAULT_MESSAGES
    if device_ids and opts.devices is None:
        devices = [_device(d, i, config.devices) for i, d in enumerate(device_ids)]
    else:
        devices = default_devices(opts.devices, config.devices)
    fleet = Fleet(devices, config.sensors, seed)
    start, interval = timing(count, opts.rate, now)
    ratio = DEFAULT_INVALID_RATIO if opts.invalid_ratio is None else opts.invalid_ratio
    return fleet.messages(count, start, interval, ratio)


def replay_file(path: Path, limit: int | None, via: str) -> Iterator[Message]:
    """The file's messages (at most ``limit``), lazily; see ``iotpipe/replay.py``."""
    with path.open("rb") as fh:
        captured = replay(replay_lines(fh, str(path), via))
        for device, data, ts in islice(captured, limit):
            yield Message(device, data, ts)
