"""The stream's KMS key as IAM needs it: a key ARN, never an alias.

Its own module because the :class:`~iotpipe.resources.base.Context` reads it once for the
roles, the stream and the plan, and ``base`` must not import the stream's module (which
imports ``base``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from iotpipe.aws import error_code, error_message
from iotpipe.resources.errors import ResourceStateError

AWS_MANAGED_KEY = "alias/aws/kinesis"
KEY_ARN_RE = re.compile(r"^arn:[a-z-]+:kms:([a-z0-9-]+):(\d{12}):(key|alias)/(.+)$")


def is_aws_managed(key: str) -> bool:
    return key == AWS_MANAGED_KEY or key.endswith(f":{AWS_MANAGED_KEY}")


def customer_key_arn(key: str, region: str, kms: Callable[[], Any]) -> str | None:
    """The ARN of the configured ``key``, None for the AWS-managed one.

    IAM grants on KMS name the key's ARN, never an alias, so an alias or a key id in the
    config is looked up (DescribeKey on the client ``kms()`` makes, only then: a read) in the command's
    ``region``.
    """
    if is_aws_managed(key):
        return None
    arn = KEY_ARN_RE.match(key)
    if arn and arn.group(1) != region:
        raise ResourceStateError(
            f"stream.kms_key {key} is in {arn.group(1)}, the stream in {region}: "
            "Kinesis needs a key in the stream's region."
        )
    if arn and arn.group(3) == "key":
        return key
    try:
        meta = kms().describe_key(KeyId=key)["KeyMetadata"]
    except ClientError as exc:
        if error_code(exc) not in ("NotFoundException", "InvalidArnException"):
            raise
        raise ResourceStateError(
            f"stream.kms_key {key}: no such KMS key in {region} "
            f"({error_message(exc)}). Create it, or use {AWS_MANAGED_KEY}."
        ) from None
    return None if meta.get("KeyManager") == "AWS" else str(meta["Arn"])
