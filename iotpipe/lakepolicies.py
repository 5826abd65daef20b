"""IAM documents of the lake's two roles, as plain dicts (the lake's half of :mod:`policies`).

The transform function's role may only write its own log group: Firehose hands it the
records and takes its answer, so it reads and writes nothing else. The Firehose role is
least privilege as :mod:`policies` is (REFERENCE.md 1.8 and "Firehose reading a Kinesis
stream"): it reads only this deployment's stream, lists only its bucket and writes only
under ``data/`` and ``errors/`` (never ``athena-results/``), invokes only the transform and
reads only the lake's Glue table (format conversion fetches the schema from it). No ``"*"``
resource: every action here has a resource type. Trust policies carry
``aws:SourceAccount`` against the confused-deputy problem. Pure functions.
"""

from __future__ import annotations

from iotpipe.lakeschema import DATA_PREFIX, ERROR_PREFIX
from iotpipe.naming import Names
from iotpipe.policies import Document, _allow, _trust, lambda_trust

__all__ = [
    "delivery_invoke_transform",
    "delivery_read_stream",
    "delivery_read_table",
    "delivery_write_lake",
    "firehose_trust",
    "transform_log_group_arn",
    "transform_trust",
    "write_transform_logs",
]

# The transform runs as Lambda, so its role trusts Lambda exactly as the processor's does.
transform_trust = lambda_trust


def firehose_trust(names: Names) -> Document:
    """Only Firehose, acting for this account, may assume the delivery stream's role."""
    return _trust("firehose.amazonaws.com", {"StringEquals": {"aws:SourceAccount": names.account}})


def transform_log_group_arn(names: Names) -> str:
    return names.arn("logs", f"log-group:{names.transform_log_group}")


# --- grants: the statements each lake kind needs in a role -------------------------------


def write_transform_logs(names: Names, key_arn: str | None = None) -> list[Document]:
    arn = transform_log_group_arn(names)
    return [_allow("WriteLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [arn, f"{arn}:*"])]


def delivery_read_stream(names: Names, key_arn: str | None = None) -> list[Document]:
    """KinesisStreamAsSource: Firehose reads the stream with the delivery stream's role."""
    actions = [
        "kinesis:DescribeStream",
        "kinesis:GetShardIterator",
        "kinesis:GetRecords",
        "kinesis:ListShards",
    ]
    return [_allow("ReadStream", actions, [names.stream_arn])]


def delivery_write_lake(names: Names, key_arn: str | None = None) -> list[Document]:
    """Bucket-level actions on the bucket, object actions only under the two prefixes
    Firehose writes (``athena-results/`` is Athena's, not Firehose's)."""
    bucket = names.bucket_arn
    return [
        _allow(
            "LakeBucket",
            ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
            [bucket],
        ),
        _allow(
            "LakeObjects",
            ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
            [f"{bucket}/{DATA_PREFIX}*", f"{bucket}/{ERROR_PREFIX}*"],
        ),
    ]


def delivery_invoke_transform(names: Names, key_arn: str | None = None) -> list[Document]:
    """The function and its qualified forms (Firehose may call ``<arn>:$LATEST``)."""
    arn = names.transform_function_arn
    actions = ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"]
    return [_allow("InvokeTransform", actions, [arn, f"{arn}:*"])]


def delivery_read_table(names: Names, key_arn: str | None = None) -> list[Document]:
    """Format conversion reads the table's schema; Glue checks the catalog, the database
    and the table ARN for these actions."""
    db = names.lake_database
    resources = [
        names.glue_arn("catalog"),
        names.glue_arn(f"database/{db}"),
        names.glue_arn(f"table/{db}/{names.lake_table}"),
    ]
    actions = ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"]
    return [_allow("ReadLakeTable", actions, resources)]
