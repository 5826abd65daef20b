"""The lake's IAM documents, pure: no "*" anywhere, exactly the ARNs the flow uses, the
confused-deputy condition on both trusts, the partition in every ARN."""

from __future__ import annotations

from typing import Any

import pytest
from resource_helpers import ACCOUNT, SUFFIX

from iotpipe import lakepolicies
from iotpipe.config import Config
from iotpipe.naming import Names
from iotpipe.resources.lakeroles import FirehoseRole, TransformRole
from iotpipe.resources.roles import role_policy

KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def names_for(partition: str = "aws") -> Names:
    return Names.of(Config(), SUFFIX, ACCOUNT, partition)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(doc: dict[str, Any]) -> dict[str, tuple[set[str], set[str]]]:
    """{Sid: (actions, resources)}"""
    return {
        s["Sid"]: (set(as_list(s["Action"])), set(as_list(s["Resource"]))) for s in doc["Statement"]
    }


def firehose_policy(names: Names, key: str | None = None) -> dict[str, Any]:
    return role_policy(FirehoseRole.key, names, key)


def transform_policy(names: Names) -> dict[str, Any]:
    return role_policy(TransformRole.key, names)


@pytest.mark.parametrize("key", [None, KEY], ids=["aws-managed-key", "customer-key"])
def test_no_star_anywhere_and_every_resource_is_an_arn(key: str | None) -> None:
    names = names_for()
    for doc in (firehose_policy(names, key), transform_policy(names)):
        assert doc["Statement"], doc
        for stmt in doc["Statement"]:
            assert stmt["Effect"] == "Allow"
            assert all("*" not in a for a in as_list(stmt["Action"])), stmt
            resources = as_list(stmt["Resource"])
            assert resources and "*" not in resources, stmt
            assert all(r.startswith("arn:aws:") for r in resources), resources


def test_firehose_role_grants_exactly_what_the_delivery_stream_uses() -> None:
    n = names_for()
    bucket = f"arn:aws:s3:::iot-telemetry-{SUFFIX}-{ACCOUNT}-us-east-1"
    fn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:iot-telemetry-transform-{SUFFIX}"
    db = f"iot_telemetry_lake_{SUFFIX}"
    glue = f"arn:aws:glue:us-east-1:{ACCOUNT}"
    assert grants(firehose_policy(n)) == {
        "ReadStream": (
            {
                "kinesis:DescribeStream",
                "kinesis:GetShardIterator",
                "kinesis:GetRecords",
                "kinesis:ListShards",
            },
            {f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/iot-telemetry-stream-{SUFFIX}"},
        ),
        "LakeBucket": (
            {"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"},
            {bucket},
        ),
        "LakeObjects": (
            {"s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"},
            {f"{bucket}/data/*", f"{bucket}/errors/*"},
        ),
        "InvokeTransform": (
            {"lambda:InvokeFunction", "lambda:GetFunctionConfiguration"},
            {fn, f"{fn}:*"},
        ),
        "ReadLakeTable": (
            {"glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"},
            {f"{glue}:catalog", f"{glue}:database/{db}", f"{glue}:table/{db}/telemetry"},
        ),
    }


def test_a_customer_stream_key_adds_decrypt_on_that_key_for_this_stream_only() -> None:
    n = names_for()
    statements = firehose_policy(n, KEY)["Statement"]
    assert statements[-1] == {
        "Sid": "DecryptStream",
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": [KEY],
        "Condition": {"StringEquals": {"kms:EncryptionContext:aws:kinesis:arn": n.stream_arn}},
    }
    assert "DecryptStream" not in grants(firehose_policy(n))


def test_transform_role_may_only_write_its_own_log_group() -> None:
    n = names_for()
    group = (
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/iot-telemetry-transform-{SUFFIX}"
    )
    assert grants(transform_policy(n)) == {
        "WriteLogs": ({"logs:CreateLogStream", "logs:PutLogEvents"}, {group, f"{group}:*"})
    }


def test_both_trusts_carry_the_source_account() -> None:
    n = names_for()
    for doc, service in (
        (lakepolicies.firehose_trust(n), "firehose.amazonaws.com"),
        (lakepolicies.transform_trust(n), "lambda.amazonaws.com"),
    ):
        (stmt,) = doc["Statement"]
        assert stmt["Principal"] == {"Service": service}
        assert stmt["Action"] == "sts:AssumeRole"
        assert stmt["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_the_partition_flows_into_every_arn() -> None:
    n = names_for("aws-cn")
    for doc in (firehose_policy(n, None), transform_policy(n)):
        for stmt in doc["Statement"]:
            assert all(r.startswith("arn:aws-cn:") for r in stmt["Resource"]), stmt
