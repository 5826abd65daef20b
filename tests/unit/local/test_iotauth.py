"""IoT policy evaluation: the deployment's device policy and the rules IoT Core applies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from iotpipe.local.iotauth import Context, Decision, evaluate, is_allowed, resource_arn

BASE = "arn:aws:iot:us-east-1:123456789012"
THING = "${iot:Connection.Thing.ThingName}"

# The shape of the deployment's device policy (issue 12, REFERENCE.md section 6).
DEVICE_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": f"{BASE}:client/{THING}",
            "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}},
        },
        {
            "Effect": "Allow",
            "Action": "iot:Publish",
            "Resource": f"{BASE}:topic/iot/sensors/{THING}/data",
        },
    ],
}

ATTACHED = Context(client_id="dev-1", thing_name="dev-1")
NOT_ATTACHED = Context(client_id="dev-1")  # the cert is not attached to a thing named dev-1


def arn(action: str, target: str) -> str:
    return resource_arn(action, target, partition="aws", region="us-east-1", account="123456789012")


@pytest.mark.parametrize(
    ("ctx", "action", "target", "expected"),
    [
        (ATTACHED, "iot:Connect", "dev-1", True),
        (NOT_ATTACHED, "iot:Connect", "dev-1", False),
        (ATTACHED, "iot:Connect", "dev-2", False),  # context says dev-1, resource is dev-2
        (Context(client_id="dev-2", thing_name="dev-2"), "iot:Connect", "dev-2", True),
        (ATTACHED, "iot:Publish", "iot/sensors/dev-1/data", True),
        (ATTACHED, "iot:Publish", "iot/sensors/dev-2/data", False),
        (ATTACHED, "iot:Publish", "iot/sensors/dev-1/data/extra", False),
        (ATTACHED, "iot:Publish", "iot/sensors/+/data", False),
        (NOT_ATTACHED, "iot:Publish", "iot/sensors/dev-1/data", False),  # variable unresolved
        (ATTACHED, "iot:Subscribe", "iot/sensors/dev-1/data", False),
        (ATTACHED, "iot:Receive", "iot/sensors/dev-1/data", False),
        (Context(client_id=None), "iot:Connect", "dev-1", False),
    ],
)
def test_device_policy(ctx: Context, action: str, target: str, expected: bool) -> None:
    assert is_allowed([DEVICE_POLICY], action, arn(action, target), ctx) is expected


def test_document_as_stored_json_string_is_the_same() -> None:
    text = json.dumps(DEVICE_POLICY)
    topic = arn("iot:Publish", "iot/sensors/dev-1/data")
    assert is_allowed([text], "iot:Publish", topic, ATTACHED)
    assert not is_allowed([text], "iot:Publish", topic, NOT_ATTACHED)


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


ANY_CLIENT = Context(client_id="c1")


@pytest.mark.parametrize(
    ("statements", "action", "target", "ctx", "expected"),
    [
        # wildcards: * across levels, ? one character, + and # are literal in ARNs
        ([_allow("iot:*", "*")], "iot:Publish", "a/b", ANY_CLIENT, Decision.ALLOW),
        ([_allow("*", f"{BASE}:topic/a/*")], "iot:Publish", "a/b/c", ANY_CLIENT, Decision.ALLOW),
        (
            [_allow("iot:Publish", f"{BASE}:topic/a/?")],
            "iot:Publish",
            "a/b",
            ANY_CLIENT,
            Decision.ALLOW,
        ),
        (
            [_allow("iot:Publish", f"{BASE}:topic/a/?")],
            "iot:Publish",
            "a/bc",
            ANY_CLIENT,
            Decision.IMPLICIT_DENY,
        ),
        (
            [_allow("iot:Publish", f"{BASE}:topic/a/+")],
            "iot:Publish",
            "a/b",
            ANY_CLIENT,
            Decision.IMPLICIT_DENY,
        ),
        (
            [_allow("iot:Subscribe", f"{BASE}:topicfilter/a/+")],
            "iot:Subscribe",
            "a/+",
            ANY_CLIENT,
            Decision.ALLOW,
        ),
        (
            [_allow("iot:Subscribe", f"{BASE}:topic/a/+")],
            "iot:Subscribe",
            "a/+",
            ANY_CLIENT,
            Decision.IMPLICIT_DENY,
        ),
        (
            [_allow("iot:Publish", f"{BASE}:topic/a.b")],
            "iot:Publish",
            "aXb",
            ANY_CLIENT,
            Decision.IMPLICIT_DENY,
        ),
        # lists; actions are case-insensitive, resources are not
        (
            [_allow(["iot:Connect", "iot:Publish"], [f"{BASE}:topic/x", f"{BASE}:topic/y"])],
            "iot:Publish",
            "y",
            ANY_CLIENT,
            Decision.ALLOW,
        ),
        (
            [_allow("IOT:PUBLISH", f"{BASE}:topic/x")],
            "iot:Publish",
            "x",
            ANY_CLIENT,
            Decision.ALLOW,
        ),
        (
            [_allow("iot:Publish", f"{BASE}:topic/X")],
            "iot:Publish",
            "x",
            ANY_CLIENT,
            Decision.IMPLICIT_DENY,
        ),
        # explicit deny wins over any allow, in any order; no statement: default deny
        (
            [
                _allow("iot:*", "*"),
                {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{BASE}:topic/secret/*"},
            ],
            "iot:Publish",
            "secret/k",
            ANY_CLIENT,
            Decision.EXPLICIT_DENY,
        ),
        (
            [{"Effect": "Deny", "Action": "iot:Publish", "Resource": "*"}, _allow("iot:*", "*")],
            "iot:Connect",
            "c1",
            ANY_CLIENT,
            Decision.ALLOW,
        ),
        ([], "iot:Connect", "c1", ANY_CLIENT, Decision.IMPLICIT_DENY),
        # NotAction / NotResource
        (
            [{"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"}],
            "iot:Subscribe",
            "a",
            ANY_CLIENT,
            Decision.ALLOW,
        ),
        (
            [{"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"}],
            "iot:Publish",
            "a",
            ANY_CLIENT,
            Decision.IMPLICIT_DENY,
        ),
        (
            [
                _allow("iot:*", "*"),
                {"Effect": "Deny", "Action": "iot:Publish", "NotResource": f"{BASE}:topic/ok"},
            ],
            "iot:Publish",
            "bad",
            ANY_CLIENT,
            Decision.EXPLICIT_DENY,
        ),
        (
            [
                _allow("iot:*", "*"),
                {"Effect": "Deny", "Action": "iot:Publish", "NotResource": f"{BASE}:topic/ok"},
            ],
            "iot:Publish",
            "ok",
            ANY_CLIENT,
            Decision.ALLOW,
        ),
        # ${iot:ClientId} needs no thing, and its value is literal, never a wildcard
        (
            [_allow("iot:Connect", f"{BASE}:client/${{iot:ClientId}}")],
            "iot:Connect",
            "c1",
            ANY_CLIENT,
            Decision.ALLOW,
        ),
        (
            [_allow("iot:Publish", f"{BASE}:topic/${{iot:ClientId}}")],
            "iot:Publish",
            "anything",
            Context(client_id="*"),
            Decision.IMPLICIT_DENY,
        ),
        (
            [_allow("iot:Publish", f"{BASE}:topic/${{iot:ClientId}}")],
            "iot:Publish",
            "*",
            Context(client_id="*"),
            Decision.ALLOW,
        ),
        # an unresolved variable makes the statement not match, Deny included
        (
            [
                _allow("iot:*", "*"),
                {
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": f"{BASE}:client/${{iot:Connection.Thing.ThingName}}",
                },
            ],
            "iot:Connect",
            "c1",
            ANY_CLIENT,
            Decision.ALLOW,
        ),
        (
            [_allow("iot:Connect", f"{BASE}:client/${{iot:No.Such.Variable}}")],
            "iot:Connect",
            "c1",
            ANY_CLIENT,
            Decision.IMPLICIT_DENY,
        ),
    ],
)
def test_rules(
    statements: list[dict[str, Any]], action: str, target: str, ctx: Context, expected: Decision
) -> None:
    assert evaluate([_doc(*statements)], action, arn(action, target), ctx) is expected


THING_CTX = Context(
    client_id="t1", thing_name="t1", thing_type="sensor", attributes={"site": "lab", "Floor": "2"}
)


@pytest.mark.parametrize(
    ("condition", "ctx", "expected"),
    [
        ({"Bool": {"iot:Connection.Thing.IsAttached": "true"}}, THING_CTX, True),
        ({"Bool": {"iot:Connection.Thing.IsAttached": True}}, THING_CTX, True),
        ({"Bool": {"iot:Connection.Thing.IsAttached": "true"}}, Context(client_id="t1"), False),
        ({"Bool": {"iot:Connection.Thing.IsAttached": "false"}}, Context(client_id="t1"), True),
        ({"StringEquals": {"iot:ClientId": ["x", "t1"]}}, THING_CTX, True),
        ({"StringEquals": {"iot:ClientId": "T1"}}, THING_CTX, False),
        ({"StringEqualsIgnoreCase": {"iot:ClientId": "T1"}}, THING_CTX, True),
        ({"StringNotEquals": {"iot:ClientId": "t1"}}, THING_CTX, False),
        ({"StringLike": {"iot:ClientId": "t?"}}, THING_CTX, True),
        ({"StringLike": {"iot:ClientId": "x*"}}, THING_CTX, False),
        ({"StringNotLike": {"iot:ClientId": "x*"}}, THING_CTX, True),
        ({"StringNotLike": {"iot:ClientId": "${iot:ClientId}"}}, Context(client_id="a*"), False),
        ({"StringNotLike": {"iot:ClientId": "${iot:ClientId}"}}, Context(client_id="b"), False),
        (
            {"StringNotEquals": {"iot:Connection.Thing.ThingName": "x"}},
            Context(client_id="t1"),
            True,
        ),
        (
            {"StringLike": {"iot:ClientId": "${iot:Connection.Thing.ThingName}*"}},
            Context(client_id="t1x"),
            False,
        ),
        ({"StringEquals": {"iot:Connection.Thing.Attributes[site]": "lab"}}, THING_CTX, True),
        ({"StringEquals": {"iot:Connection.Thing.Attributes[site]": "home"}}, THING_CTX, False),
        ({"StringEquals": {"iot:Connection.Thing.Attributes[nope]": "lab"}}, THING_CTX, False),
        ({"StringEquals": {"iot:Connection.Thing.ThingTypeName": "sensor"}}, THING_CTX, True),
        ({"StringEquals": {"iot:ClientId": "${iot:Connection.Thing.ThingName}"}}, THING_CTX, True),
        ({"StringEqualsIfExists": {"iot:Connection.Thing.Attributes[nope]": "x"}}, THING_CTX, True),
        ({"Null": {"iot:Connection.Thing.Attributes[nope]": "true"}}, THING_CTX, True),
        ({"Null": {"iot:Connection.Thing.Attributes[site]": "true"}}, THING_CTX, False),
        # every operator and key must hold
        (
            {
                "Bool": {"iot:Connection.Thing.IsAttached": "true"},
                "StringEquals": {"iot:ClientId": "x"},
            },
            THING_CTX,
            False,
        ),
        # the case of a condition key does not matter
        ({"StringEquals": {"IOT:CLIENTID": "t1"}}, THING_CTX, True),
        # an operator this evaluator does not know grants nothing
        ({"NumericEquals": {"iot:ClientId": "1"}}, THING_CTX, False),
    ],
)
def test_conditions_on_an_allow(condition: dict[str, Any], ctx: Context, expected: bool) -> None:
    doc = _doc(_allow("iot:Connect", "*", Condition=condition))
    assert is_allowed([doc], "iot:Connect", arn("iot:Connect", "t1"), ctx) is expected


def test_a_deny_this_evaluator_cannot_read_still_denies() -> None:
    doc = _doc(
        _allow("iot:*", "*"),
        {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"NumericLessThan": {"x": "1"}},
        },
    )
    assert (
        evaluate([doc], "iot:Connect", arn("iot:Connect", "c"), ANY_CLIENT)
        is Decision.EXPLICIT_DENY
    )


def test_thing_variables_need_an_attached_thing() -> None:
    doc = _doc(
        _allow("iot:Publish", f"{BASE}:topic/site/${{iot:Connection.Thing.Attributes[site]}}")
    )
    topic = arn("iot:Publish", "site/lab")
    assert is_allowed([doc], "iot:Publish", topic, THING_CTX)
    unattached = Context(client_id="t1", attributes={"site": "lab"})
    assert not is_allowed([doc], "iot:Publish", topic, unattached)


@pytest.mark.parametrize("bad", ["not json", "[]", json.dumps({"Statement": "x"}), json.dumps({})])
def test_a_malformed_document_grants_nothing(bad: str) -> None:
    good = _doc(_allow("iot:Connect", "*"))
    assert (
        evaluate([bad], "iot:Connect", arn("iot:Connect", "c"), ANY_CLIENT)
        is Decision.IMPLICIT_DENY
    )
    assert (
        evaluate([bad, good], "iot:Connect", arn("iot:Connect", "c"), ANY_CLIENT) is Decision.ALLOW
    )


def test_attribute_names_keep_their_case() -> None:
    doc = _doc(
        _allow("iot:Publish", f"{BASE}:topic/floor/${{iot:Connection.Thing.Attributes[Floor]}}")
    )
    assert is_allowed([doc], "iot:Publish", arn("iot:Publish", "floor/2"), THING_CTX)
    lower = _doc(
        _allow("iot:Publish", f"{BASE}:topic/floor/${{iot:Connection.Thing.Attributes[floor]}}")
    )
    assert not is_allowed([lower], "iot:Publish", arn("iot:Publish", "floor/2"), THING_CTX)
    mixed = _doc(_allow("iot:Publish", f"{BASE}:topic/${{IOT:ClientId}}"))
    assert is_allowed([mixed], "iot:Publish", arn("iot:Publish", "t1"), THING_CTX)


def test_policies_are_combined() -> None:
    connect = _doc(_allow("iot:Connect", "*"))
    publish = _doc(_allow("iot:Publish", f"{BASE}:topic/t"))
    assert is_allowed([connect, publish], "iot:Publish", arn("iot:Publish", "t"), ANY_CLIENT)
    assert not is_allowed([connect], "iot:Publish", arn("iot:Publish", "t"), ANY_CLIENT)


def test_resource_arn_forms() -> None:
    assert arn("iot:Connect", "c") == f"{BASE}:client/c"
    assert arn("iot:Receive", "a/b") == f"{BASE}:topic/a/b"
    assert arn("iot:Subscribe", "a/#") == f"{BASE}:topicfilter/a/#"
    with pytest.raises(ValueError, match="iot:GetThingShadow"):
        arn("iot:GetThingShadow", "x")


def test_the_deployments_policy_document_is_least_privilege() -> None:
    """The document `up` creates (iotpipe.devicepolicy), not a copy of its shape."""
    devicepolicy = pytest.importorskip("iotpipe.devicepolicy")
    doc = devicepolicy.device_policy(
        "iot/sensors/+/data", partition="aws", region="us-east-1", account="123456789012"
    )
    text = devicepolicy.policy_json(doc)
    own = arn("iot:Publish", "iot/sensors/dev-1/data")
    assert is_allowed([text], "iot:Connect", arn("iot:Connect", "dev-1"), ATTACHED)
    assert not is_allowed([text], "iot:Connect", arn("iot:Connect", "dev-1"), NOT_ATTACHED)
    assert is_allowed([text], "iot:Publish", own, ATTACHED)
    assert not is_allowed(
        [text], "iot:Publish", arn("iot:Publish", "iot/sensors/dev-2/data"), ATTACHED
    )
    assert not is_allowed(
        [text], "iot:Subscribe", arn("iot:Subscribe", "iot/sensors/dev-1/data"), ATTACHED
    )
