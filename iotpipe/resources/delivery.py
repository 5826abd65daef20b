"""The lake's Firehose delivery stream: Kinesis stream -> transform -> Parquet in S3.

It reads the pipeline's Kinesis stream (``KinesisStreamAsSource``), so both ways in
(``--via iot`` and ``--via kinesis``) feed it and the rule needs no second action. The
request is the lake contract's (``notes/lake-contract.md``, REFERENCE.md 1.1): the
transform as Lambda processor, dynamic partitioning on its ``partitionKeys``, format
conversion to Parquet with the Glue table's schema, the ``lakeschema`` prefixes.

Firehose has no waiter (REFERENCE 1.5): creation is polled until ACTIVE, and
CREATING_FAILED (terminal) is reported with Firehose's reason; ``describe`` marks such a
stream ``failed`` so the next ``up`` replaces it. A role created seconds earlier is refused
with "Firehose is unable to assume role" or "... is not authorized to perform ..." (the
messages Terraform retries): those are retried for the IAM propagation window. The source
cannot change once made, nor can dynamic partitioning be switched: such changes replace
the stream (a new one starts reading at LATEST, so records put meanwhile reach Timestream
but not the lake); the destination's settings change in place with UpdateDestination.

moto (REFERENCE 1.9) stores the request and echoes it: ``Source`` comes back as
``{"KinesisStreamSourceDescription": <the request's KinesisStreamSourceConfiguration>}``,
as AWS shapes it (AWS adds DeliveryStartTimestamp), the stream is ACTIVE at once, and
processor parameters are echoed as sent, where AWS may leave out those at their defaults
(hence :data:`PROCESSOR_DEFAULTS` when reading).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from iotpipe import lakepolicies, policies
from iotpipe.aws import Gateway, tag_list
from iotpipe.lakeschema import FIREHOSE_ERROR_PREFIX, FIREHOSE_PREFIX
from iotpipe.poll import Backoff, TimedOut, until
from iotpipe.resources.base import UP, Changes, Context, Discovery, Grant, Props, Resource
from iotpipe.resources.common import LOCAL_DELAY, deleted_once_settled, get_or_none, retry_iam
from iotpipe.resources.errors import ResourceStateError
from iotpipe.resources.lakeroles import lake_enabled
from iotpipe.verdict import Check

STREAM_TYPE = "KinesisStreamAsSource"
ROLE_NOT_READY = ("Firehose is unable to assume role", "is not authorized to perform")
ROLE_NOT_READY_CODES = ("InvalidArgumentException",)
STATE_TIMEOUT = 300.0  # REFERENCE 1.5: creation takes "seconds to a few minutes"
AWS_POLL_S = 5.0  # control-plane calls are limited to 5 per second per account
FAILED = frozenset({"CREATING_FAILED", "DELETING_FAILED"})
# The Lambda processor's parameters besides LambdaArn (Firehose's values are strings);
# they are also Firehose's defaults, which AWS may omit when describing.
PROCESSOR_DEFAULTS = {
    "NumberOfRetries": "3",
    "BufferSizeInMBs": "1",
    "BufferIntervalInSeconds": "60",
}
PARTITIONING_RETRY_S = 300
PARQUET_COMPRESSION = "SNAPPY"
# Kinds the delivery stream needs besides the stream, its role and the transform: the
# bucket it writes and the Glue table format conversion reads (Firehose checks both at
# create time); ``down`` deletes the stream before it empties the bucket.
LAKE_STORAGE: tuple[str, ...] = ("lake_bucket", "lake_catalog")


def list_delivery_streams(gateway: Gateway, prefix: str) -> Iterator[str]:
    """Every delivery stream name (no boto3 paginator for this one)."""
    firehose = gateway.client("firehose")
    params: dict[str, Any] = {"Limit": 100}
    while True:
        page = firehose.list_delivery_streams(**params)
        names = list(page.get("DeliveryStreamNames", []))
        yield from names
        if not page.get("HasMoreDeliveryStreams") or not names:
            return
        params["ExclusiveStartDeliveryStreamName"] = names[-1]


def delivery_health(ctx: Context) -> Check:
    found = ctx.client("firehose").describe_delivery_stream(
        DeliveryStreamName=ctx.names.delivery_stream
    )["DeliveryStreamDescription"]
    status = found.get("DeliveryStreamStatus", "?")
    ok = status == "ACTIVE"
    fix = "" if ok else f"{failure(found)} {UP}".strip()
    return Check("Firehose delivery stream is ACTIVE", ok, status, fix)


def failure(description: dict[str, Any]) -> str:
    """Firehose's own words for a failed stream ('' when it gave none)."""
    why = description.get("FailureDescription") or {}
    return " ".join(str(why[k]) for k in ("Type", "Details") if why.get(k))


class DeliveryStream(Resource):
    """Firehose delivery stream ``<name>-lake-<suffix>``."""

    key = "delivery_stream"
    label = "Firehose delivery stream"
    depends_on = ("stream", "firehose_role", "transform", *LAKE_STORAGE)
    replace_on = frozenset(
        {"stream_type", "source_stream_arn", "source_role_arn", "dynamic_partitioning"}
        | {"partitioning_retry_s", "failed"}
    )
    shown_on_create = ("source_stream_arn", "buffer_s", "buffer_mb", "prefix")
    discovery = (Discovery(lambda n: n.delivery_stream, list_delivery_streams),)
    health = (delivery_health,)
    # Everything the stream does, it does with its role: these are that role's statements.
    grants = (
        Grant("firehose_role", lakepolicies.delivery_read_stream),
        Grant("firehose_role", lakepolicies.delivery_write_lake),
        Grant("firehose_role", lakepolicies.delivery_invoke_transform),
        Grant("firehose_role", lakepolicies.delivery_read_table),
        Grant("firehose_role", policies.decrypt_stream, "key"),
    )
    fixes = {
        "failed": "Firehose could not create the delivery stream (CREATING_FAILED): "
        "run 'iotpipe up' to replace it, once 'iotpipe verify' shows why."
    }

    @property
    def name(self) -> str:
        return self.ctx.names.delivery_stream

    @property
    def _firehose(self) -> Any:
        return self.ctx.client("firehose")

    def enabled(self) -> bool:
        return lake_enabled(self.ctx)

    def desired(self) -> Props:
        names, lake = self.ctx.names, self.ctx.config.lake
        role = names.role_arn(names.firehose_role)
        return {
            "stream_type": STREAM_TYPE,
            "source_stream_arn": names.stream_arn,
            "source_role_arn": role,
            "role_arn": role,
            "bucket_arn": names.bucket_arn,
            "prefix": FIREHOSE_PREFIX,
            "error_prefix": FIREHOSE_ERROR_PREFIX,
            "buffer_s": lake.buffer_s,
            "buffer_mb": lake.buffer_mb,
            "compression": "UNCOMPRESSED",  # Parquet compresses itself (SNAPPY)
            "lambda_arn": names.transform_function_arn,
            "processor": dict(PROCESSOR_DEFAULTS),
            "dynamic_partitioning": True,
            "partitioning_retry_s": PARTITIONING_RETRY_S,
            "database": names.lake_database,
            "table": names.lake_table,
            "schema_role_arn": role,
            "parquet_compression": PARQUET_COMPRESSION,
            "failed": False,
        }

    def describe(self) -> Props | None:
        """The settings, plus ``status``, ``version_id`` and ``destination_id`` (facts
        UpdateDestination needs, not settings)."""
        found = get_or_none(
            lambda: self._firehose.describe_delivery_stream(DeliveryStreamName=self.name)
        )
        if found is None:
            return None
        d = found["DeliveryStreamDescription"]
        source = (d.get("Source") or {}).get("KinesisStreamSourceDescription") or {}
        dest: dict[str, Any] = next(iter(d.get("Destinations") or []), {})
        s3 = dest.get("ExtendedS3DestinationDescription") or {}
        hints = s3.get("BufferingHints") or {}
        processors = (s3.get("ProcessingConfiguration") or {}).get("Processors") or [{}]
        params = {
            p["ParameterName"]: p["ParameterValue"] for p in processors[0].get("Parameters", [])
        }
        conversion = s3.get("DataFormatConversionConfiguration") or {}
        schema = conversion.get("SchemaConfiguration") or {}
        serializer = (conversion.get("OutputFormatConfiguration") or {}).get("Serializer") or {}
        partitioning = s3.get("DynamicPartitioningConfiguration") or {}
        return {
            "stream_type": d.get("DeliveryStreamType"),
            "source_stream_arn": source.get("KinesisStreamARN"),
            "source_role_arn": source.get("RoleARN"),
            "role_arn": s3.get("RoleARN"),
            "bucket_arn": s3.get("BucketARN"),
            "prefix": s3.get("Prefix"),
            "error_prefix": s3.get("ErrorOutputPrefix"),
            "buffer_s": hints.get("IntervalInSeconds"),
            "buffer_mb": hints.get("SizeInMBs"),
            "compression": s3.get("CompressionFormat"),
            "lambda_arn": params.get("LambdaArn"),
            "processor": {k: params.get(k, v) for k, v in PROCESSOR_DEFAULTS.items()},
            "dynamic_partitioning": bool(partitioning.get("Enabled", False)),
            "partitioning_retry_s": (partitioning.get("RetryOptions") or {}).get(
                "DurationInSeconds"
            ),
            "database": schema.get("DatabaseName"),
            "table": schema.get("TableName"),
            "schema_role_arn": schema.get("RoleARN"),
            "parquet_compression": (serializer.get("ParquetSerDe") or {}).get("Compression"),
            "failed": d.get("DeliveryStreamStatus") in FAILED,
            "status": d.get("DeliveryStreamStatus"),
            "version_id": d.get("VersionId"),
            "destination_id": dest.get("DestinationId"),
        }

    def _destination(self, want: Props) -> dict[str, Any]:
        """ExtendedS3 settings that both Create and UpdateDestination take."""
        parameters = {"LambdaArn": want["lambda_arn"], **want["processor"]}
        return {
            "RoleARN": want["role_arn"],
            "BucketARN": want["bucket_arn"],
            "Prefix": want["prefix"],
            "ErrorOutputPrefix": want["error_prefix"],
            "BufferingHints": {
                "IntervalInSeconds": want["buffer_s"],
                "SizeInMBs": want["buffer_mb"],
            },
            "CompressionFormat": want["compression"],
            "ProcessingConfiguration": {
                "Enabled": True,
                "Processors": [
                    {
                        "Type": "Lambda",
                        "Parameters": [
                            {"ParameterName": k, "ParameterValue": v} for k, v in parameters.items()
                        ],
                    }
                ],
            },
            "DataFormatConversionConfiguration": {
                "Enabled": True,
                "SchemaConfiguration": {
                    "RoleARN": want["schema_role_arn"],
                    "DatabaseName": want["database"],
                    "TableName": want["table"],
                    "Region": self.ctx.names.region,
                    "VersionId": "LATEST",  # schema edits (new sensors) apply by themselves
                },
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                "OutputFormatConfiguration": {
                    "Serializer": {"ParquetSerDe": {"Compression": want["parquet_compression"]}}
                },
            },
        }

    def request(self) -> dict[str, Any]:
        """The whole CreateDeliveryStream request."""
        want = self.desired()
        destination = self._destination(want)
        # Only at creation: Firehose can neither switch it on later nor off ever.
        destination["DynamicPartitioningConfiguration"] = {
            "Enabled": want["dynamic_partitioning"],
            "RetryOptions": {"DurationInSeconds": want["partitioning_retry_s"]},
        }
        return {
            "DeliveryStreamName": self.name,
            "DeliveryStreamType": want["stream_type"],
            "KinesisStreamSourceConfiguration": {
                "KinesisStreamARN": want["source_stream_arn"],
                "RoleARN": want["source_role_arn"],
            },
            "ExtendedS3DestinationConfiguration": destination,
            "Tags": tag_list(self.ctx.tags),
        }

    def create(self) -> dict[str, Any]:
        params = self.request()
        return self._until_active(lambda: self._firehose.create_delivery_stream(**params))

    def update(self, current: Props, changes: Changes) -> dict[str, Any]:
        if not current.get("version_id"):
            current = self.describe() or {}
        params = {
            "DeliveryStreamName": self.name,
            "CurrentDeliveryStreamVersionId": current.get("version_id"),
            "DestinationId": current.get("destination_id"),
            "ExtendedS3DestinationUpdate": self._destination(self.desired()),
        }
        return self._until_active(lambda: self._firehose.update_destination(**params))

    def _until_active(self, call: Callable[[], Any]) -> dict[str, Any]:
        """A create or update: retried while the new Firehose role is not assumable yet,
        then waited on until the stream is ACTIVE again."""
        retry_iam(self.ctx, call, ROLE_NOT_READY, ROLE_NOT_READY_CODES)
        self._settle(lambda status: status == "ACTIVE", "created", "up")
        return self.outputs()

    def delete(self) -> bool:
        if not deleted_once_settled(
            self.ctx,
            lambda: self._firehose.delete_delivery_stream(DeliveryStreamName=self.name),
            timeout=STATE_TIMEOUT,
            backoff=self._backoff,
        ):
            return False
        self._settle(lambda status: status is None, "deleted", "down")
        return True

    def outputs(self, current: Props | None = None) -> dict[str, Any]:
        return {"name": self.name, "arn": self.ctx.names.delivery_stream_arn}

    @property
    def _backoff(self) -> Backoff:
        return Backoff.fixed(LOCAL_DELAY if self.ctx.gateway.local else AWS_POLL_S)

    def _description(self) -> dict[str, Any] | None:
        found = get_or_none(
            lambda: self._firehose.describe_delivery_stream(DeliveryStreamName=self.name)
        )
        return None if found is None else dict(found["DeliveryStreamDescription"])

    def _settle(self, done: Callable[[str | None], bool], goal: str, command: str) -> None:
        """Poll the status (None: gone) until ``done``. A final state (CREATING_FAILED
        while creating, DELETING_FAILED either way) or a stream gone while it was being
        created stops the wait with Firehose's reason."""
        final = FAILED if goal == "created" else frozenset({"DELETING_FAILED"})

        def probe() -> str | None:
            found = self._description()
            status = None if found is None else found.get("DeliveryStreamStatus")
            if status in final or (found is None and goal == "created"):
                why = failure(found or {}) or "it no longer exists"
                raise ResourceStateError(
                    f"delivery stream {self.name} was not {goal} ({status or 'gone'}): {why}. "
                    f"Fix the cause, then run 'iotpipe {command}' again"
                    + (": it replaces the failed stream." if command == "up" else ".")
                )
            return status

        try:
            until(
                probe,
                done=done,
                timeout=STATE_TIMEOUT,
                backoff=self._backoff,
                clock=self.ctx.poll_clock,
            )
        except TimedOut as exc:
            raise ResourceStateError(
                f"delivery stream {self.name} still {exc.last} after {STATE_TIMEOUT:.0f} s"
            ) from None
