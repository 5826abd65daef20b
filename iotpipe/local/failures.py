"""Failure records for the failure queue, in the shapes AWS documents, and their delivery.

Two writers live in the emulator: the event source mapping's OnFailure destination
(Lambda's invocation record with ``KinesisBatchInfo``) and the IoT rule's errorAction
(the rule error message with ``failures[]``). Both are delivered straight into moto's SQS
(or SNS) backend, as AWS would deliver them, without an HTTP round trip.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any
from urllib.parse import urlparse

from iotpipe.local import motointernals as moto
from iotpipe.local.batching import Discard
from iotpipe.local.counters import COUNTERS


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def esm_failure_record(
    function_arn: str, stream_arn: str, shard_id: str, discard: Discard, now: float
) -> dict[str, Any]:
    """Lambda's on-failure invocation record for a discarded Kinesis batch."""
    records = discard.records
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if discard.last is not None and discard.last.function_error:
        response["functionError"] = discard.last.function_error
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": discard.condition,
            "approximateInvokeCount": discard.invoke_count,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": _iso(now),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": str(records[0].seq),
            "endSequenceNumber": str(records[-1].seq),
            "approximateArrivalOfFirstRecord": _iso(records[0].arrival),
            "approximateArrivalOfLastRecord": _iso(records[-1].arrival),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


def iot_error_record(
    rule_name: str, topic: str, client_id: str, payload: bytes, failures: list[dict[str, str]]
) -> dict[str, Any]:
    """The message an IoT rule's errorAction receives when one of its actions failed."""
    return {
        "ruleName": rule_name,
        "topic": topic,
        "cloudwatchTraceId": str(uuid.uuid4()),
        "clientId": client_id,
        "base64OriginalPayload": base64.b64encode(payload).decode(),
        "failures": failures,
    }


def queue_from_url(url: str, account: str, region: str) -> tuple[str, str, str]:
    """(account, region, queue name) from a queue URL, defaulting to the caller's."""
    parsed = urlparse(url)
    parts = [p for p in parsed.path.split("/") if p]
    host = parsed.hostname or ""
    if host.startswith("sqs.") and host.count(".") >= 2:
        region = host.split(".")[1]
    if len(parts) >= 2 and parts[-2].isdigit():
        account = parts[-2]
    return account, region, parts[-1] if parts else ""


def send_to_queue(account: str, region: str, queue_name: str, body: str) -> None:
    """SendMessage into moto's SQS (raises if the queue does not exist)."""
    moto.send_message(account, region, queue_name, body)
    COUNTERS.add("failure_messages_sent")


def send_to_arn(destination_arn: str, body: dict[str, Any]) -> None:
    """Deliver a record to an OnFailure destination ARN (SQS queue or SNS topic)."""
    parts = destination_arn.split(":")
    service, region, account, name = parts[2], parts[3], parts[4], parts[5]
    text = json.dumps(body)
    if service == "sqs":
        send_to_queue(account, region, name, text)
    elif service == "sns":
        moto.sns_publish(account, region, destination_arn, text)
        COUNTERS.add("failure_messages_sent")
    else:
        raise ValueError(f"unsupported OnFailure destination {destination_arn}")
