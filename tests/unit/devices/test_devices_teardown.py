"""AWS's teardown order for a device, asserted call by call on a stubbed client."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from iotpipe.devices import Scope, remove_device
from iotpipe.naming import Names
from iotpipe.poll import Clock

CERT_ID = "c0ffee" * 10 + "abcd"
ARN = f"arn:aws:iot:us-east-1:123456789012:cert/{CERT_ID}"
THING = "dep-abc123-s1"


def test_remove_follows_the_documented_order_and_retries_the_async_detach() -> None:
    iot = boto3.client("iot", region_name="us-east-1", aws_access_key_id="x",
                       aws_secret_access_key="x")  # fmt: skip
    sleeps: list[float] = []
    scope = Scope(Names("dep", "abc123", "us-east-1", "123456789012", "aws", "t"),
                  "iot/sensors/+/data", clock=Clock(sleeps.append, lambda: 0.0))  # fmt: skip
    thing = {"thingName": THING}
    cert = {"certificateId": CERT_ID}
    with Stubber(iot) as stub:
        stub.add_response("describe_thing", {"thingName": THING}, thing)
        stub.add_response("list_thing_principals", {"principals": [ARN]}, thing)
        stub.add_response("detach_thing_principal", {}, {**thing, "principal": ARN})
        stub.add_response("list_attached_policies", {"policies": [{"policyName": "p"}]},
                          {"target": ARN})  # fmt: skip
        stub.add_response("detach_policy", {}, {"policyName": "p", "target": ARN})
        stub.add_response("update_certificate", {}, {**cert, "newStatus": "INACTIVE"})
        stub.add_client_error("delete_certificate", "CertificateStateException",
                              expected_params=cert)  # fmt: skip
        stub.add_response("delete_certificate", {}, cert)
        stub.add_client_error("delete_thing", "InvalidRequestException",
                              "Cannot delete. Thing is still attached", expected_params=thing)  # fmt: skip
        stub.add_response("delete_thing", {}, thing)
        assert remove_device(iot, scope, "s1") is True
        stub.assert_no_pending_responses()
    assert len(sleeps) == 2  # one pause per retried delete, on the injected clock
