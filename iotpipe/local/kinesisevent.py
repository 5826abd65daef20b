"""A Kinesis batch as the event Lambda hands a function, sent to the worker compactly.

Why: each record of a Lambda Kinesis event repeats nine fields that are the same for
the whole batch (source ARN, region, role...). Encoding those as JSON for every record
was ~10% of the emulator's one busy core while data flowed, so the emulator sends the
shared fields once and one short list per record (`compact`), and the function's worker
process, which has a core of its own, builds the real event (`expand`) before calling the
handler. The handler sees exactly what Lambda would give it.
"""

from __future__ import annotations

from typing import Any

MARK = "__iotpipe_kinesis_batch__"


def compact(
    records: list[tuple[str, int, str, float]], shard_id: str, role: str, region: str, arn: str
) -> dict[str, Any]:
    """(partition key, sequence number, base64 data, arrival) per record."""
    return {
        MARK: {
            "shard": shard_id,
            "role": role,
            "region": region,
            "arn": arn,
            "records": [[pk, str(seq), data, round(at, 3)] for pk, seq, data, at in records],
        }
    }


def expand(event: Any) -> Any:
    """The Lambda event for a `compact` batch; any other event unchanged."""
    if not isinstance(event, dict) or MARK not in event:
        return event
    batch = event[MARK]
    shard, role, region, arn = batch["shard"], batch["role"], batch["region"], batch["arn"]
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": pk,
                    "sequenceNumber": seq,
                    "data": data,
                    "approximateArrivalTimestamp": at,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard}:{seq}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": role,
                "awsRegion": region,
                "eventSourceARN": arn,
            }
            for pk, seq, data, at in batch["records"]
        ]
    }
