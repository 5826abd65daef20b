"""add / list / remove on moto in-process: files, modes, idempotence, validation."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from iotpipe.devices import (
    Scope,
    add_device,
    list_devices,
    remove_device,
    thing_attributes,
    thing_name,
)
from iotpipe.errors import IotpipeError, UsageError
from iotpipe.resources.base import Context
from iotpipe.resources.devicepolicy import DevicePolicy

CA = "-----BEGIN CERTIFICATE-----\nTEST CA\n-----END CERTIFICATE-----\n"


@pytest.fixture
def policy(ctx: Context) -> DevicePolicy:
    res = DevicePolicy(ctx)
    res.create()
    return res


def _add(iot: Any, scope: Scope, tmp_path: Path, dev: str = "sensor001") -> Any:
    attrs = thing_attributes("floor_1", "temperature_sensor", {"rack": "r7"})
    return add_device(iot, scope, dev, attrs, tmp_path, lambda: CA)


def test_add_creates_thing_certificate_attachments_and_files(
    iot: Any, scope: Scope, policy: DevicePolicy, tmp_path: Path
) -> None:
    result = _add(iot, scope, tmp_path)
    thing = "iot-telemetry-abc123-sensor001"
    assert result.created and result.thing == thing == result.client_id
    assert result.topic == f"iot/sensors/{thing}/data" and result.port == 8883
    assert result.endpoint.endswith(".amazonaws.com")
    attrs = iot.describe_thing(thingName=thing)["attributes"]
    assert attrs == {"location": "floor_1", "device_type": "temperature_sensor", "rack": "r7"}
    (principal,) = iot.list_thing_principals(thingName=thing)["principals"]
    assert iot.list_attached_policies(target=principal)["policies"][0]["policyName"] == policy.name
    cert = iot.describe_certificate(certificateId=result.certificate_id)["certificateDescription"]
    assert cert["status"] == "ACTIVE"
    assert result.cert_path.read_text() == cert["certificatePem"]
    assert "PRIVATE KEY" in result.key_path.read_text()
    assert result.root_ca_path.read_text() == CA
    assert iot.list_things_in_thing_group(thingGroupName="iot-telemetry-abc123-devices")[
        "things"
    ] == [thing]


def test_private_key_is_0600_even_with_a_permissive_umask(
    iot: Any, scope: Scope, policy: DevicePolicy, tmp_path: Path
) -> None:
    import os

    old = os.umask(0)
    try:
        result = _add(iot, scope, tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(result.key_path.stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_adding_again_changes_nothing_and_makes_no_second_certificate(
    iot: Any, scope: Scope, policy: DevicePolicy, tmp_path: Path
) -> None:
    first = _add(iot, scope, tmp_path)
    key = first.key_path.read_text()
    again = _add(iot, scope, tmp_path)
    assert not again.created and again.certificate_id == first.certificate_id
    assert len(iot.list_certificates()["certificates"]) == 1
    assert first.key_path.read_text() == key


def test_list_shows_thing_certificate_status_and_attributes(
    iot: Any, scope: Scope, policy: DevicePolicy, tmp_path: Path
) -> None:
    made = _add(iot, scope, tmp_path)
    (info,) = list_devices(iot, scope)
    assert info.device_id == "sensor001" and info.thing == made.thing
    assert info.certificates == [(made.certificate_id, "ACTIVE")]
    assert info.attributes["location"] == "floor_1"


def test_remove_deletes_certificate_and_thing(
    iot: Any, scope: Scope, policy: DevicePolicy, tmp_path: Path
) -> None:
    _add(iot, scope, tmp_path)
    assert remove_device(iot, scope, "sensor001") is True
    assert iot.list_certificates()["certificates"] == []
    assert iot.list_things()["things"] == []
    assert remove_device(iot, scope, "sensor001") is False


def test_add_without_the_policy_says_run_up(iot: Any, scope: Scope, tmp_path: Path) -> None:
    with pytest.raises(IotpipeError, match="iotpipe up"):
        _add(iot, scope, tmp_path)
    assert iot.list_things()["things"] == []


@pytest.mark.parametrize(
    ("location", "extra", "message"),
    [
        ("floor 1", {}, "no spaces"),
        ("f", {"a": "1", "b": "2", "c": "3"}, "at most 3"),
        ("f", {"bad name": "1"}, "attribute name"),
        ("f", {"location": "x"}, "repeats --location"),
        ("x" * 801, {}, "at most 800"),
    ],
)
def test_attribute_limits_are_usage_errors(
    location: str, extra: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        thing_attributes(location, None, extra)


def test_device_ids_are_checked(ctx: Context) -> None:
    with pytest.raises(UsageError, match="letters, digits"):
        thing_name(ctx.names, "a:b")
    with pytest.raises(UsageError, match="too long"):
        thing_name(ctx.names, "x" * 128)


def test_an_unwritable_folder_is_refused_before_anything_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private key is returned once: no certificate may be made that nobody can hold."""
    import boto3
    from moto import mock_aws

    from iotpipe.devices.identity import Scope, add_device
    from iotpipe.errors import UsageError
    from iotpipe.naming import Names

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with mock_aws():
        iot = boto3.client("iot", region_name="us-east-1")
        names = Names("dep", "abc123", "us-east-1", "123456789012", "aws", "t")
        scope = Scope(names, "iot/sensors/+/data")
        with pytest.raises(UsageError, match="Nothing was created"):
            add_device(iot, scope, "s1", {}, blocker / "sub", None, ("h", 1))
        assert iot.list_certificates()["certificates"] == []
        assert iot.list_things()["things"] == []
