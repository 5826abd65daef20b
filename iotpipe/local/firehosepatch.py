"""Replacements for moto's Firehose: a KinesisStreamAsSource delivery stream delivers.

moto stores such a stream's configuration and nothing else (it never reads the source
stream), and accepts PutRecord/PutRecordBatch on it, writing the raw bytes to S3 at once.
Here the direct puts are refused as AWS refuses them (the data comes from the stream
only), and create, update and delete reach the delivery manager (`firehose`) at once, so
a new delivery stream starts reading at the source's LATEST at the moment it is created.
DirectPut streams keep moto's behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from iotpipe.local import motointernals_lake as lake
from iotpipe.local.patching import service
from iotpipe.local.runtime import RUNTIME

FIREHOSE = service("firehose")
REFUSED = "This operation is not permitted on KinesisStreamAsSource delivery stream type."


# moto's parameter names, for the self-test: these replacements pass them through as *args.
CREATE_PARAMS = (
    "self region delivery_stream_name delivery_stream_type kinesis_stream_source_configuration "
    "delivery_stream_encryption_configuration_input s3_destination_configuration "
    "extended_s3_destination_configuration redshift_destination_configuration "
    "elasticsearch_destination_configuration splunk_destination_configuration "
    "http_endpoint_destination_configuration snowflake_destination_configuration "
    "iceberg_destination_configuration tags"
)
UPDATE_PARAMS = (
    "self delivery_stream_name current_delivery_stream_version_id destination_id "
    "s3_destination_update extended_s3_destination_update s3_backup_mode "
    "redshift_destination_update elasticsearch_destination_update splunk_destination_update "
    "http_endpoint_destination_update snowflake_destination_configuration "
    "iceberg_destination_update"
)


@FIREHOSE.patch(
    lake.FirehoseBackend, "create_delivery_stream", params=CREATE_PARAMS, pass_original=True
)
def create_delivery_stream(original: Callable[..., str], self: Any, *args: Any, **kw: Any) -> str:
    """A KinesisStreamAsSource stream starts reading its source's LATEST now."""
    arn = original(self, *args, **kw)
    if RUNTIME.firehose is not None:
        RUNTIME.firehose.on_created(arn)
    return arn


@FIREHOSE.patch(
    lake.FirehoseBackend, "update_destination", params=UPDATE_PARAMS, pass_original=True
)
def update_destination(original: Callable[..., None], self: Any, *args: Any, **kw: Any) -> None:
    """The new configuration (and version) applies from the next flush."""
    original(self, *args, **kw)
    if RUNTIME.firehose is not None:
        RUNTIME.firehose.on_changed()


@FIREHOSE.patch(lake.FirehoseBackend, "delete_delivery_stream", pass_original=True)
def delete_delivery_stream(
    original: Callable[..., None], self: Any, delivery_stream_name: str
) -> None:
    """Buffered records are dropped with the stream, as on AWS."""
    original(self, delivery_stream_name)
    if RUNTIME.firehose is not None:
        RUNTIME.firehose.on_changed()


@FIREHOSE.patch(lake.FirehoseBackend, "put_record_batch", pass_original=True)
def put_record_batch(
    original: Callable[..., dict[str, Any]],
    self: Any,
    delivery_stream_name: str,
    records: list[dict[str, bytes]],
) -> dict[str, Any]:
    """Refused on a KinesisStreamAsSource stream (moto's PutRecord calls this too)."""
    ds = lake.delivery_stream(self.account_id, self.region_name, delivery_stream_name)
    if ds is not None and lake.is_kinesis_source(ds):
        raise lake.InvalidArgumentException(REFUSED)
    return original(self, delivery_stream_name, records)
