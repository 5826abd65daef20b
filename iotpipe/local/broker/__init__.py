"""The embedded AWS's MQTT endpoint: IoT Core's broker, as a device sees it.

`codec` reads and writes the MQTT 3.1.1 and 5 packets a device uses (pure), `server` runs
them over mutual TLS with IoT's authorization and limits. The broker knows nothing of
moto: the emulator gives it an authorizer (IoT policies, `iotidentity.Authorizer`) and an
``on_publish`` (the topic rules, `iotrules.on_publish`).
"""

from iotpipe.local.broker.server import Authorizer, MqttBroker, PublishHook

__all__ = ["Authorizer", "MqttBroker", "PublishHook"]
