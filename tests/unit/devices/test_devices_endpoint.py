"""Where devices connect on AWS: the account's ATS endpoint on 8883, and Amazon Root CA 1."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import boto3
from botocore.stub import Stubber

from iotpipe.devices.endpoint import endpoint_for, root_ca_for
from iotpipe.devices.identity import amazon_root_ca


class _Gateway:
    local = False
    endpoint_url = None

    def __init__(self, iot: Any) -> None:
        self._iot = iot

    def client(self, service: str) -> Any:
        assert service == "iot"
        return self._iot


def test_on_aws_devices_use_the_ats_endpoint_on_8883_and_amazon_root_ca_1() -> None:
    iot = boto3.client(
        "iot", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(iot) as stub:
        stub.add_response(
            "describe_endpoint",
            {"endpointAddress": "abc123-ats.iot.eu-west-1.amazonaws.com"},
            {"endpointType": "iot:Data-ATS"},  # never the legacy VeriSign iot:Data
        )
        dep: Any = SimpleNamespace(gateway=_Gateway(iot))
        where = endpoint_for(dep)
    assert (where.host, where.port) == ("abc123-ats.iot.eu-west-1.amazonaws.com", 8883)
    provider = root_ca_for(dep)
    assert provider is not None and provider() == amazon_root_ca()
    assert "BEGIN CERTIFICATE" in amazon_root_ca()
