"""Devices in the function's registry: the things of the deployment, merged with the
config's ``devices:`` (the config wins, field by field, so a thing keeps the attributes the
config does not mention)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from iotpipe.devices.identity import Scope, list_devices

Registry = dict[str, dict[str, str]]


def merge_registry(config_devices: Mapping[str, Mapping[str, str]], things: Registry) -> Registry:
    """Pure: ``{id: {field: value}}`` from the things, each overlaid by the config's entry
    of the same id; sorted, so the function's zip (and its CodeSha256) is deterministic."""
    merged: Registry = {}
    for dev_id in sorted(set(config_devices) | set(things)):
        entry = {**things.get(dev_id, {}), **config_devices.get(dev_id, {})}
        merged[dev_id] = dict(sorted(entry.items()))
    return merged


def thing_registry(iot: Any, scope: Scope) -> Registry:
    """``{id: attributes}`` of every thing of the deployment (read-only)."""
    return {d.device_id: dict(d.attributes) for d in list_devices(iot, scope)}


def with_device_things(settings: dict[str, Any], iot: Any, scope: Scope) -> dict[str, Any]:
    """``settings_from_config(...)`` with the deployment's things in its ``devices``."""
    return {**settings, "devices": merge_registry(settings["devices"], thing_registry(iot, scope))}


def config_overrides(
    config_devices: Mapping[str, Mapping[str, str]], device_id: str, attributes: Mapping[str, str]
) -> dict[str, str]:
    """Pure: the attributes given to ``devices add`` that the config's entry for the same
    device overrides in the function's registry, with the config's values (the config
    wins: without saying so, ``--location`` on a configured device would do nothing)."""
    entry = config_devices.get(device_id, {})
    return {k: entry[k] for k, v in attributes.items() if k in entry and entry[k] != v}
