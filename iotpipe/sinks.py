"""Which sink carries messages for ``--via``: the one choice send-test, the probe and the
demo share."""

from __future__ import annotations

from iotpipe.target import Deployment
from iotpipe.traffic import IotSink, KinesisSink, Sink, iot_data_client


def sink_for(dep: Deployment, via: str) -> Sink:
    """kinesis: PutRecords; iot: the HTTP publish API; mqtt: as the deployment's devices."""
    if via == "mqtt":
        # Deferred for start-up time: paho loads only when MQTT is used (no cycle).
        from iotpipe.mqttsend import mqtt_sink

        return mqtt_sink(dep)
    if via == "iot":
        return IotSink(iot_data_client(dep.gateway), dep.config.iot_rule.topic)
    return KinesisSink(dep.gateway.client("kinesis"), dep.names.stream)
