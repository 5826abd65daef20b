"""IAM documents for the two roles, as plain dicts: the trust policies, and the statements
each resource kind grants a role (the kind declares which, as ``Resource.grants``; the role
puts them together: ``roles.role_policy``).

Least privilege, unlike the recipe: every statement names the one resource it is for, built
from :class:`~iotpipe.naming.Names` (so the partition from STS flows into every ARN), and
the only ``"*"`` is ``timestream:DescribeEndpoints``, which has no resource type. Trust
policies carry ``aws:SourceAccount`` (and ``aws:SourceArn`` for the IoT rule) against the
confused-deputy problem. Pure functions: tests can walk every statement without AWS.

The stream is encrypted at rest. With the AWS-managed key (``alias/aws/kinesis``) no
principal needs a KMS permission. With a customer key, Kinesis calls KMS as the caller: a
producer (the rule's role) needs ``kms:GenerateDataKey`` and a consumer (the function's
role, which the event source mapping reads with) ``kms:Decrypt``, each on that one key and
only for this stream (Kinesis passes the stream ARN as the encryption context).
"""

from __future__ import annotations

from typing import Any

from iotpipe.naming import Names

VERSION = "2012-10-17"

Document = dict[str, Any]


def _document(*statements: Document) -> Document:
    return {"Version": VERSION, "Statement": list(statements)}


def _allow(sid: str, actions: list[str], resources: list[str]) -> Document:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


def _trust(service: str, condition: dict[str, dict[str, str]]) -> Document:
    return _document(
        {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": condition,
        }
    )


def lambda_trust(names: Names) -> Document:
    """Only Lambda, acting for this account, may assume the function's role."""
    return _trust("lambda.amazonaws.com", {"StringEquals": {"aws:SourceAccount": names.account}})


def rule_trust(names: Names) -> Document:
    """Only IoT, acting for this deployment's rule, may assume the rule's role."""
    return _trust(
        "iot.amazonaws.com",
        {
            "StringEquals": {"aws:SourceAccount": names.account},
            "ArnLike": {"aws:SourceArn": names.rule_arn},
        },
    )


def _stream_key(sid: str, action: str, names: Names, key_arn: str) -> Document:
    statement = _allow(sid, [action], [key_arn])
    statement["Condition"] = {
        "StringEquals": {"kms:EncryptionContext:aws:kinesis:arn": names.stream_arn}
    }
    return statement


# --- grants: the statements each kind needs in a role (its module declares which) -------


def read_stream(names: Names, key_arn: str | None = None) -> list[Document]:
    """The function (the event source mapping reads with its role) consumes the stream."""
    actions = [
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "kinesis:SubscribeToShard",
    ]
    return [_allow("ReadStream", actions, [names.stream_arn])]


def decrypt_stream(names: Names, key_arn: str | None = None) -> list[Document]:
    """A consumer of a stream under a customer key needs ``kms:Decrypt`` on that key."""
    return [_stream_key("DecryptStream", "kms:Decrypt", names, key_arn)] if key_arn else []


def put_to_stream(names: Names, key_arn: str | None = None) -> list[Document]:
    return [_allow("PutToStream", ["kinesis:PutRecord"], [names.stream_arn])]


def encrypt_for_stream(names: Names, key_arn: str | None = None) -> list[Document]:
    """A producer to a stream under a customer key needs ``kms:GenerateDataKey``."""
    if not key_arn:
        return []
    return [_stream_key("EncryptForStream", "kms:GenerateDataKey", names, key_arn)]


def write_table(names: Names, key_arn: str | None = None) -> list[Document]:
    return [
        _allow("WriteTable", ["timestream:WriteRecords"], [names.table_arn]),
        # DescribeEndpoints has no resource type: "*" is the only value IAM accepts.
        _allow("DiscoverTimestreamEndpoints", ["timestream:DescribeEndpoints"], ["*"]),
    ]


def write_logs(names: Names, key_arn: str | None = None) -> list[Document]:
    return [
        _allow(
            "WriteLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [names.log_group_arn, f"{names.log_group_arn}:*"],
        )
    ]


def quarantine(names: Names, key_arn: str | None = None) -> list[Document]:
    """The function sends records it cannot write to the failure queue."""
    return [_allow("Quarantine", ["sqs:SendMessage"], [names.queue_arn])]


def error_action(names: Names, key_arn: str | None = None) -> list[Document]:
    """The rule's errorAction sends messages the Kinesis action could not deliver."""
    return [_allow("ErrorAction", ["sqs:SendMessage"], [names.queue_arn])]


def document(statements: list[Document]) -> Document:
    return _document(*statements)
