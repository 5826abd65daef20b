"""The deployment's devices (IoT things and their certificates), as ``up``/``down`` see
them: ``up`` makes only their thing group (the devices come from ``iotpipe devices add``);
``down`` removes every thing in the group with its certificates, then the group."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from iotpipe.aws import Gateway
from iotpipe.devices.identity import Scope, ensure_group, remove_all
from iotpipe.devices.scheme import group_name
from iotpipe.resources.base import Context, Discovery, Props, Resource
from iotpipe.resources.common import get_or_none


def scope_of(ctx: Context) -> Scope:
    return ctx.devices


def list_thing_groups(gateway: Gateway, prefix: str) -> Iterator[str]:
    pages = gateway.client("iot").get_paginator("list_thing_groups")
    for page in pages.paginate(namePrefixFilter=prefix):
        yield from (g["groupName"] for g in page.get("thingGroups", []))


class Things(Resource):
    key = "things"
    label = "IoT devices (thing group)"
    depends_on = ("device_policy",)
    discovery = (Discovery(group_name, list_thing_groups),)
    health = ()  # "configured" checks the group exists

    @property
    def name(self) -> str:
        return group_name(self.ctx.names)

    @property
    def _iot(self) -> Any:
        return self.ctx.client("iot")

    def desired(self) -> Props:
        return {}

    def describe(self) -> Props | None:
        got = get_or_none(lambda: self._iot.describe_thing_group(thingGroupName=self.name))
        return None if got is None else {}

    def create(self) -> dict[str, Any]:
        ensure_group(self._iot, scope_of(self.ctx))
        return self.outputs()

    def update(self, current: Props, changes: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
        return self.outputs()

    def delete(self) -> bool:
        existed = self.describe() is not None
        removed = remove_all(self._iot, scope_of(self.ctx))
        return existed or bool(removed)

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        return {"name": self.name}
