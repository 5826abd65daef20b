"""The IAM documents: least privilege, confused-deputy conditions, partition-aware ARNs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from resource_helpers import ACCOUNT, SUFFIX

from iotpipe import policies
from iotpipe.config import Config
from iotpipe.naming import Names
from iotpipe.resources.roles import function_policy, rule_policy


def names_for(partition: str = "aws", region: str = "us-east-1") -> Names:
    cfg = Config(region=region)
    return Names.of(cfg, SUFFIX, ACCOUNT, partition)


def permission_documents(names: Names) -> list[dict[str, Any]]:
    return [
        function_policy(names, queue=True),
        function_policy(names, queue=False),
        rule_policy(names, queue=True),
        rule_policy(names, queue=False),
    ]


def all_documents(names: Names) -> list[dict[str, Any]]:
    return [policies.lambda_trust(names), policies.rule_trust(names), *permission_documents(names)]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def strings(node: Any) -> Iterator[str]:
    """Every string anywhere in a document (keys excluded)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def test_only_describe_endpoints_has_a_star_resource() -> None:
    starred = []
    for doc in permission_documents(names_for()):
        assert doc["Version"] == "2012-10-17"
        for stmt in doc["Statement"]:
            assert stmt["Effect"] == "Allow"
            actions = as_list(stmt["Action"])
            assert all("*" not in a for a in actions), actions
            resources = as_list(stmt["Resource"])
            assert resources, stmt
            if any(r == "*" for r in resources):
                starred.append(actions)
                assert resources == ["*"]
            else:
                assert all(r.startswith("arn:") for r in resources), resources
    assert starred == [["timestream:DescribeEndpoints"], ["timestream:DescribeEndpoints"]]


def test_function_policy_grants_exactly_what_the_pipeline_needs() -> None:
    names = names_for()
    grants = {
        (action, resource)
        for stmt in function_policy(names, queue=True)["Statement"]
        for action in stmt["Action"]
        for resource in stmt["Resource"]
    }
    kinesis = {
        "DescribeStream",
        "DescribeStreamSummary",
        "GetRecords",
        "GetShardIterator",
        "ListShards",
        "SubscribeToShard",
    }
    expected = {(f"kinesis:{a}", names.stream_arn) for a in kinesis} | {
        ("timestream:WriteRecords", names.table_arn),
        ("timestream:DescribeEndpoints", "*"),
        ("logs:CreateLogStream", names.log_group_arn),
        ("logs:CreateLogStream", f"{names.log_group_arn}:*"),
        ("logs:PutLogEvents", names.log_group_arn),
        ("logs:PutLogEvents", f"{names.log_group_arn}:*"),
        ("sqs:SendMessage", names.queue_arn),
    }
    assert grants == expected


def test_rule_policy_is_put_record_and_error_queue_only() -> None:
    names = names_for()
    with_queue = rule_policy(names, queue=True)["Statement"]
    assert [(s["Action"], s["Resource"]) for s in with_queue] == [
        (["kinesis:PutRecord"], [names.stream_arn]),
        (["sqs:SendMessage"], [names.queue_arn]),
    ]
    without = rule_policy(names, queue=False)["Statement"]
    assert [s["Action"] for s in without] == [["kinesis:PutRecord"]]


@pytest.mark.parametrize("queue", [True, False])
def test_sqs_only_when_the_queue_is_enabled(queue: bool) -> None:
    names = names_for()
    for doc in (function_policy(names, queue), rule_policy(names, queue)):
        sqs = [s for s in doc["Statement"] if any(a.startswith("sqs:") for a in s["Action"])]
        assert bool(sqs) is queue


def test_trust_policies_carry_confused_deputy_conditions() -> None:
    names = names_for()
    (lam,) = policies.lambda_trust(names)["Statement"]
    assert lam["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert lam["Action"] == "sts:AssumeRole"
    assert lam["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}

    (iot,) = policies.rule_trust(names)["Statement"]
    assert iot["Principal"] == {"Service": "iot.amazonaws.com"}
    assert iot["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert iot["Condition"]["ArnLike"] == {"aws:SourceArn": names.rule_arn}
    assert names.rule_arn == f"arn:aws:iot:us-east-1:{ACCOUNT}:rule/{names.rule}"


def test_partition_flows_into_every_arn() -> None:
    names = names_for("aws-cn", "cn-north-1")
    arns = [s for doc in all_documents(names) for s in strings(doc) if s.startswith("arn:")]
    assert len(arns) >= 8
    assert all(a.startswith("arn:aws-cn:") for a in arns), arns
    assert all(":cn-north-1:" in a for a in arns), arns
