"""Pure rules for device names and thing attributes (IoT's limits, REFERENCE.md section 6)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from iotpipe.errors import UsageError
from iotpipe.naming import Names

THING_NAME_MAX = 128
# A thing without a thing type holds at most 3 attributes (a thing type, which could hold
# 50, cannot be deleted until 5 minutes after deprecation: too slow for ``down``).
MAX_ATTRIBUTES = 3
ATTR_NAME_MAX, ATTR_VALUE_MAX = 128, 800
ATTR_NAME_RE = re.compile(r"[a-zA-Z0-9_.,@/:#-]+")
ATTR_VALUE_RE = re.compile(r"[a-zA-Z0-9_.,@/:#=\[\]-]*")
# The id becomes part of a thing name, an MQTT client id and a topic level: no ':' (thing
# names allow it, but it would read as an ARN separator in the policy's resources).
DEVICE_ID_RE = re.compile(r"[a-zA-Z0-9_-]+")


def policy_name(names: Names) -> str:
    return f"{names.deployment}-device-policy"


def group_name(names: Names) -> str:
    return f"{names.deployment}-devices"


def thing_name(names: Names, device_id: str) -> str:
    """``<deployment>-<id>``, checked against IoT's thing-name rules (UsageError: exit 2)."""
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise UsageError(f"device id {device_id!r} may use only letters, digits, '_' and '-'")
    name = f"{names.deployment}-{device_id}"
    if len(name) > THING_NAME_MAX:
        room = THING_NAME_MAX - len(names.deployment) - 1
        raise UsageError(f"device id {device_id!r} is too long (at most {room} characters here)")
    return name


def device_id_of(names: Names, thing: str) -> str:
    """The id a thing of this deployment was added with (its name without the prefix)."""
    prefix = f"{names.deployment}-"
    return thing[len(prefix) :] if thing.startswith(prefix) else thing


def parse_attrs(pairs: Iterable[str]) -> dict[str, str]:
    """``["k=v", ...]`` -> ``{"k": "v"}``; a pair without '=' or an empty key is a usage error."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--attr {pair!r} is not of the form key=value")
        out[key] = value
    return out


def thing_attributes(
    location: str | None, device_type: str | None, extra: Mapping[str, str]
) -> dict[str, str]:
    """The thing's attributes, validated: ``location`` and ``device_type`` are the keys the
    function's registry uses, so they are the attribute names too."""
    attrs = dict(extra)
    for key, option, value in (
        ("location", "--location", location),
        ("device_type", "--type", device_type),
    ):
        if value is not None:
            if key in attrs:
                raise UsageError(f"--attr {key}=... repeats {option}: give it once")
            attrs[key] = value
    if len(attrs) > MAX_ATTRIBUTES:
        raise UsageError(
            f"{len(attrs)} attributes given ({', '.join(sorted(attrs))}); an IoT thing "
            f"without a thing type holds at most {MAX_ATTRIBUTES}"
        )
    for key, value in attrs.items():
        _check_attribute(key, value)
    return attrs


def _check_attribute(key: str, value: str) -> None:
    if len(key) > ATTR_NAME_MAX or not ATTR_NAME_RE.fullmatch(key):
        raise UsageError(
            f"attribute name {key!r} must be 1-{ATTR_NAME_MAX} characters of "
            "letters, digits and _.,@/:#-"
        )
    if len(value) > ATTR_VALUE_MAX or not ATTR_VALUE_RE.fullmatch(value):
        raise UsageError(
            f"attribute {key}={value!r}: values are at most {ATTR_VALUE_MAX} characters of "
            "letters, digits and _.,@/:#=[]- (no spaces)"
        )
