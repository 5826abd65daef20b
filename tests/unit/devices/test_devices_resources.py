"""The device policy and things kinds: up makes, plan compares, down leaves nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from iotpipe.config import Config
from iotpipe.devices import Scope, add_device, merge_registry, with_device_things
from iotpipe.package import settings_from_config
from iotpipe.resources.base import Context, diff
from iotpipe.resources.devicepolicy import DevicePolicy
from iotpipe.resources.things import Things


def _retopic(ctx: Context, topic: str) -> Context:
    cfg = ctx.config
    return replace(ctx, config=replace(cfg, iot_rule=replace(cfg.iot_rule, topic=topic)))


def test_policy_create_then_describe_equals_desired(ctx: Context) -> None:
    res = DevicePolicy(ctx)
    assert res.describe() is None
    out = res.create()
    assert out["arn"] == "arn:aws:iot:us-east-1:123456789012:policy/" + res.name
    current = res.describe()
    assert current is not None and diff(res.desired(), current) == {}


def test_changed_document_is_a_new_default_version_keeping_at_most_five(
    ctx: Context, iot: Any
) -> None:
    DevicePolicy(ctx).create()
    for i in range(6):
        res = DevicePolicy(_retopic(ctx, f"t{i}/+/data"))
        current = res.describe()
        assert current is not None
        res.update(current, diff(res.desired(), current))
        assert res.describe() == res.desired()
    versions = iot.list_policy_versions(policyName=res.name)["policyVersions"]
    assert len(versions) == 5
    assert sum(v["isDefaultVersion"] for v in versions) == 1


def test_down_leaves_no_thing_certificate_policy_or_group(
    ctx: Context, iot: Any, scope: Scope, tmp_path: Path
) -> None:
    policy, things = DevicePolicy(ctx), Things(ctx)
    policy.create()
    things.create()
    assert things.describe() == things.desired()
    for dev in ("s1", "s2"):
        add_device(iot, scope, dev, {"location": "x"}, tmp_path, None)
    policy.update(policy.describe() or {}, {})  # a second version, deleted with the policy
    assert things.delete() is True  # reverse order: the devices first
    assert policy.delete() is True
    assert iot.list_things()["things"] == []
    assert iot.list_certificates()["certificates"] == []
    assert iot.list_policies()["policies"] == []
    assert iot.list_thing_groups()["thingGroups"] == []
    assert things.delete() is False and policy.delete() is False


def test_registry_merge_config_wins_field_by_field() -> None:
    things = {"s1": {"location": "thing_loc", "rack": "r1"}, "s2": {"location": "b"}}
    config = {"s1": {"location": "config_loc"}, "s3": {"device_type": "t"}}
    assert merge_registry(config, things) == {
        "s1": {"location": "config_loc", "rack": "r1"},
        "s2": {"location": "b"},
        "s3": {"device_type": "t"},
    }


def test_up_packages_the_things_into_the_settings(
    ctx: Context, iot: Any, scope: Scope, tmp_path: Path
) -> None:
    DevicePolicy(ctx).create()
    add_device(iot, scope, "gw9", {"location": "roof", "device_type": "gw"}, tmp_path, None)
    settings = with_device_things(settings_from_config(Config()), iot, scope)
    assert settings["devices"]["gw9"] == {"device_type": "gw", "location": "roof"}
    assert "sensor001" in settings["devices"]  # the config's registry is kept
    json.dumps(settings)
