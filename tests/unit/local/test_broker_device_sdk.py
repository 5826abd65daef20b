"""The AWS IoT Device SDK v2 (awsiotsdk on awscrt, AWS's own C client) against the broker."""

from __future__ import annotations

from typing import Any

import pytest
from broker_world import World

mqtt_connection_builder = pytest.importorskip("awsiot.mqtt_connection_builder")
awscrt_mqtt = pytest.importorskip("awscrt.mqtt")

WAIT = 10.0


def _connection(world: World, cert_of: str, client_id: str) -> object:
    dev = world.device(cert_of)
    return mqtt_connection_builder.mtls_from_path(
        cert_filepath=str(dev.cert),
        pri_key_filepath=str(dev.key),
        ca_filepath=str(world.home / "root.pem"),
        endpoint="localhost",
        port=world.broker.port,
        client_id=client_id,
        clean_session=True,
        keep_alive_secs=30,
        enable_metrics_collection=False,
    )


def test_the_device_sdk_connects_with_mtls_and_publishes_at_qos1(world: World) -> None:
    conn: Any = _connection(world, "sdk-1", "sdk-1")
    conn.connect().result(WAIT)
    future, _ = conn.publish(
        topic="iot/sensors/sdk-1/data", payload=b'{"t": 1}', qos=awscrt_mqtt.QoS.AT_LEAST_ONCE
    )
    future.result(WAIT)  # resolves on PUBACK
    conn.disconnect().result(WAIT)
    assert world.published.get_nowait() == ("sdk-1", "iot/sensors/sdk-1/data", b'{"t": 1}')


def test_the_device_sdk_is_refused_as_another_thing(world: World) -> None:
    world.device("sdk-2")
    conn: Any = _connection(world, "sdk-1", "sdk-2")
    # awscrt reports a refusing CONNACK as a protocol error (IoT Core often just hangs up)
    with pytest.raises(Exception):  # noqa: B017 - any failure to connect is the point
        conn.connect().result(WAIT)
    assert world.asked == ["iot:Connect"]  # it was the policy that refused, nothing else
