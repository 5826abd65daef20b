"""The emulator's MQTT service on moto's IoT registry: real policies decide, rules get it."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import paho.mqtt.client as mqtt
import pytest
from moto import mock_aws
from moto.iot.models import IoTBackend

from iotpipe.devicepolicy import device_policy, policy_json
from iotpipe.local import iotcerts, iotrules, mqttd

REGION, ACCOUNT = "eu-west-1", "123456789012"
WAIT = 10.0


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[mqttd.MqttService, Any, list[tuple[str, ...]]]]:
    published: list[tuple[str, ...]] = []

    def rules(account: str, region: str, topic: str, payload: bytes, client_id: str = "") -> int:
        published.append((account, region, topic, payload.decode(), client_id))
        return 1

    with (
        mock_aws(),
        mock.patch.object(
            IoTBackend, "create_keys_and_certificate", iotcerts.create_keys_and_certificate
        ),
        mock.patch.object(iotrules, "on_publish", rules),
        mock.patch.object(iotcerts, "SETTINGS", iotcerts.Settings()),
    ):
        svc = mqttd.MqttService(tmp_path)
        svc.start()
        iot = boto3.client("iot", region_name=REGION)
        doc = device_policy("iot/sensors/+/data", partition="aws", region=REGION, account=ACCOUNT)
        iot.create_policy(policyName="devices", policyDocument=policy_json(doc))
        try:
            yield svc, iot, published
        finally:
            svc.stop()


def _device(svc: mqttd.MqttService, iot: Any, tmp: Path, thing: str, attach: bool = True) -> Path:
    iot.create_thing(thingName=thing)
    made = iot.create_keys_and_certificate(setAsActive=True)
    (tmp / f"{thing}.pem").write_text(made["certificatePem"])
    (tmp / f"{thing}.key").write_text(made["keyPair"]["PrivateKey"])
    (tmp / "root.pem").write_text(svc.ca.ca_pem)
    iot.attach_policy(policyName="devices", target=made["certificateArn"])
    if attach:
        iot.attach_thing_principal(thingName=thing, principal=made["certificateArn"])
    return tmp


def _client(svc: mqttd.MqttService, tmp: Path, cert_of: str, client_id: str) -> tuple[Any, Any]:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.tls_set(str(tmp / "root.pem"), str(tmp / f"{cert_of}.pem"), str(tmp / f"{cert_of}.key"))
    events: queue.Queue[Any] = queue.Queue()
    c.on_connect = lambda cl, u, f, rc, p: events.put(("connect", rc))
    c.on_publish = lambda cl, u, mid, rc, p: events.put(("puback", rc))
    c.connect(svc.info()["host"], svc.info()["port"])
    c.loop_start()
    return c, events


def test_a_registered_device_publishes_to_its_topic_and_the_rules_run(
    service: Any, tmp_path: Path
) -> None:
    svc, iot, published = service
    _device(svc, iot, tmp_path, "dep-s1")
    c, events = _client(svc, tmp_path, "dep-s1", "dep-s1")
    kind, rc = events.get(timeout=WAIT)
    assert kind == "connect" and not rc.is_failure
    c.publish("iot/sensors/dep-s1/data", b'{"t":1}', qos=1)
    kind, rc = events.get(timeout=WAIT)
    assert kind == "puback" and not rc.is_failure
    assert published == [(ACCOUNT, REGION, "iot/sensors/dep-s1/data", '{"t":1}', "dep-s1")]
    c.publish("iot/sensors/dep-s2/data", b"{}", qos=1)  # another device's topic
    assert events.get(timeout=WAIT)[1].is_failure and len(published) == 1
    c.disconnect()
    c.loop_stop()


def test_a_certificate_not_attached_to_the_thing_cannot_connect(
    service: Any, tmp_path: Path
) -> None:
    svc, iot, _ = service
    _device(svc, iot, tmp_path, "dep-s1", attach=False)
    c, events = _client(svc, tmp_path, "dep-s1", "dep-s1")
    kind, rc = events.get(timeout=WAIT)
    assert kind == "connect" and rc.is_failure
    c.loop_stop()


def test_info_names_the_endpoint_and_ca(service: Any) -> None:
    svc, _, _ = service
    info = svc.info()
    assert info["host"] == "127.0.0.1" and info["port"] > 0
    assert Path(info["ca"]).read_text() == svc.ca.ca_pem
