"""notes/lake-contract.md's CreateDeliveryStream request, written out once and
independently of iotpipe's code (literal prefixes, not ``lakeschema``'s): the stubbed unit
tests check that ``up`` sends exactly this, and the embedded Firehose tests run it, so the
request the embedded AWS is proven with is the one ``up`` is held to."""

from __future__ import annotations

from typing import Any


def delivery_request(
    *,
    name: str,
    stream_arn: str,
    role: str,
    bucket_arn: str,
    function_arn: str,
    database: str,
    region: str,
    interval_s: int = 60,
    size_mb: int = 64,
) -> dict[str, Any]:
    """The request without Tags (the embedded tests make streams no deployment owns)."""
    return {
        "DeliveryStreamName": name,
        "DeliveryStreamType": "KinesisStreamAsSource",
        "KinesisStreamSourceConfiguration": {"KinesisStreamARN": stream_arn, "RoleARN": role},
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": role,
            "BucketARN": bucket_arn,
            "Prefix": "data/dt=!{partitionKeyFromLambda:dt}/hour=!{partitionKeyFromLambda:hour}/",
            "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/",
            "BufferingHints": {"IntervalInSeconds": interval_s, "SizeInMBs": size_mb},
            "CompressionFormat": "UNCOMPRESSED",
            "ProcessingConfiguration": {
                "Enabled": True,
                "Processors": [
                    {
                        "Type": "Lambda",
                        "Parameters": [
                            {"ParameterName": "LambdaArn", "ParameterValue": function_arn},
                            {"ParameterName": "NumberOfRetries", "ParameterValue": "3"},
                            {"ParameterName": "BufferSizeInMBs", "ParameterValue": "1"},
                            {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": "60"},
                        ],
                    }
                ],
            },
            "DynamicPartitioningConfiguration": {
                "Enabled": True,
                "RetryOptions": {"DurationInSeconds": 300},
            },
            "DataFormatConversionConfiguration": {
                "Enabled": True,
                "SchemaConfiguration": {
                    "RoleARN": role,
                    "DatabaseName": database,
                    "TableName": "telemetry",
                    "Region": region,
                    "VersionId": "LATEST",
                },
                "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
                "OutputFormatConfiguration": {
                    "Serializer": {"ParquetSerDe": {"Compression": "SNAPPY"}}
                },
            },
        },
    }
