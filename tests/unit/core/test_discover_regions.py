"""Discovery (``down`` without a state file) is region- and account-aware (issue 8, item 2):
a deployment in another region is never found, even though IAM roles are global."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto import mock_aws

from iotpipe import policies
from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.discover import find_suffixes
from iotpipe.naming import Names
from iotpipe.resources.roles import function_policy

ACCOUNT = "123456789012"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def gateway(region: str) -> Gateway:
    return Gateway(region=region, local=True)


def make_role(gw: Gateway, role: str, names: Names) -> None:
    iam = gw.client("iam")
    iam.create_role(
        RoleName=role, AssumeRolePolicyDocument=json.dumps(policies.lambda_trust(names))
    )
    doc = function_policy(names, queue=True)
    iam.put_role_policy(RoleName=role, PolicyName="iotpipe", PolicyDocument=json.dumps(doc))


@pytest.mark.usefixtures("aws")
def test_roles_of_another_region_are_not_found() -> None:
    east = Names.of(Config(), "east01", ACCOUNT, region="us-east-1")
    make_role(gateway("us-east-1"), east.function_role, east)
    ident = gateway("eu-west-1").identity()
    assert find_suffixes(Config(), gateway("eu-west-1"), ident) == []
    assert find_suffixes(Config(), gateway("us-east-1"), ident) == ["east01"]


@pytest.mark.usefixtures("aws")
def test_pre_region_roles_count_only_where_their_policy_points() -> None:
    east = Names.of(Config(), "old001", ACCOUNT, region="us-east-1")
    make_role(gateway("us-east-1"), east.retired_roles()[0], east)  # named without region
    ident = gateway("us-east-1").identity()
    assert find_suffixes(Config(), gateway("us-east-1"), ident) == ["old001"]
    assert find_suffixes(Config(), gateway("eu-west-1"), ident) == []


@pytest.mark.usefixtures("aws")
def test_regional_leftovers_are_found_only_in_their_region() -> None:
    gateway("eu-west-1").client("kinesis").create_stream(
        StreamName="iot-telemetry-stream-west01", ShardCount=1
    )
    ident = gateway("eu-west-1").identity()
    assert find_suffixes(Config(), gateway("eu-west-1"), ident) == ["west01"]
    assert find_suffixes(Config(), gateway("us-east-1"), ident) == []
