"""The device policy document, exactly (REFERENCE.md section 6), and the device topic."""

from __future__ import annotations

import hashlib
import json
import ssl

from iotpipe.devicepolicy import device_policy, device_topic, policy_json
from iotpipe.devices import amazon_root_ca


def test_document_for_the_default_topic_is_exactly_the_least_privilege_one() -> None:
    doc = device_policy("iot/sensors/+/data", partition="aws", region="eu-west-1", account="111")
    assert doc == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "iot:Connect",
                "Resource": "arn:aws:iot:eu-west-1:111:client/${iot:Connection.Thing.ThingName}",
                "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
            },
            {
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": "arn:aws:iot:eu-west-1:111:topic/iot/sensors/"
                "${iot:Connection.Thing.ThingName}/data",
            },
        ],
    }


def test_partition_and_wildcards() -> None:
    doc = device_policy("a/+/b/#", partition="aws-cn", region="cn-north-1", account="222")
    publish = doc["Statement"][1]["Resource"]
    assert publish == "arn:aws-cn:iot:cn-north-1:222:topic/a/${iot:Connection.Thing.ThingName}/b/*"
    assert {s["Action"] for s in doc["Statement"]} == {"iot:Connect", "iot:Publish"}


def test_policy_json_is_stable_and_round_trips() -> None:
    doc = device_policy("iot/sensors/+/data", partition="aws", region="r", account="1")
    text = policy_json(doc)
    assert json.loads(text) == doc
    assert text == policy_json(json.loads(text)) and " " not in text


def test_device_topic_puts_the_thing_in_place_of_plus() -> None:
    assert device_topic("iot/sensors/+/data", "dep-s1") == "iot/sensors/dep-s1/data"


def test_amazon_root_ca_1_is_the_real_one() -> None:
    der = ssl.PEM_cert_to_DER_cert(amazon_root_ca())
    assert hashlib.sha256(der).hexdigest() == (
        "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e"
    )
