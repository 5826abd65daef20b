"""Which requests change the control plane: the ones the snapshot must hold before replying.

The control-plane snapshot (`snapshot`) is written synchronously after every successful
mutating control-plane request, so the cost of that write must never land on the data
plane (PutRecords, WriteRecords, SendMessage, PutObject ...), whose parts persist their
own data. A request is classified before moto sees it, from what every AWS request
carries: the service from the SigV4 credential scope, the action from ``X-Amz-Target``
(JSON protocols), the ``Action`` form or query parameter (query protocol: IAM, STS), the
``/operation/<Action>`` path (Smithy RPC v2 CBOR) or, for the REST services (Lambda, IoT,
IoT data, S3), the method and route. A form body read for its ``Action`` is put back for
moto.
"""

from __future__ import annotations

import io
import re
from enum import Enum
from typing import Any
from urllib.parse import parse_qs


class Kind(Enum):
    READ = "read"  # nothing changes
    DATA = "data"  # changes data its part persists; the snapshot may ride along later
    CONTROL = "control"  # changes a resource: snapshot before the reply


READS = (
    "Get",
    "List",
    "Describe",
    "Head",
    "Query",
    "Select",
    "Scan",
    "Search",
    "Lookup",
    "Test",
    "Validate",
    "Estimate",
    "Check",
    "BatchGet",
)
DATA_ACTIONS: dict[str, frozenset[str]] = {
    "kinesis": frozenset({"PutRecord", "PutRecords", "SubscribeToShard"}),
    "timestream": frozenset({"WriteRecords", "CancelQuery"}),
    "sqs": frozenset(
        {
            "SendMessage",
            "SendMessageBatch",
            "ReceiveMessage",
            "DeleteMessage",
            "DeleteMessageBatch",
            "ChangeMessageVisibility",
            "ChangeMessageVisibilityBatch",
            "PurgeQueue",
        }
    ),
    "logs": frozenset({"PutLogEvents", "FilterLogEvents", "StartQuery", "StopQuery"}),
    "athena": frozenset({"StartQueryExecution", "StopQueryExecution"}),
    "monitoring": frozenset({"PutMetricData"}),
    "firehose": frozenset({"PutRecord", "PutRecordBatch"}),
    "events": frozenset({"PutEvents"}),
    "kms": frozenset({"Encrypt", "Decrypt", "GenerateDataKey", "ReEncrypt", "Sign", "Verify"}),
}
NEVER_CONTROL = frozenset({"sts"})  # credentials: nothing to keep across a restart
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_QUERY_SCOPE = re.compile(r"X-Amz-Credential=[^&]*?(?:%2F|/)[^&]*?(?:%2F|/)([a-z0-9-]+)(?:%2F|/)")
_OPERATION = re.compile(r"/operation/([A-Za-z0-9]+)$")
_MUTATING_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})


def service(environ: dict[str, Any]) -> str:
    """The SigV4 signing name (``kinesis``, ``iotdata``, ``s3``...), "" if unsigned."""
    found = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if found is None:
        found = _QUERY_SCOPE.search(environ.get("QUERY_STRING", ""))
    return found.group(1) if found else ""


def action(environ: dict[str, Any]) -> str:
    """The API action, from the target header, the operation path or the Action parameter."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return str(target.rsplit(".", 1)[-1])
    found = _OPERATION.search(environ.get("PATH_INFO", ""))
    if found:
        return found.group(1)
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        body = _buffer_body(environ)
        return parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
    return ""


def _buffer_body(environ: dict[str, Any]) -> bytes:
    """Read the body and hand moto a fresh stream over the same bytes."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def classify(environ: dict[str, Any]) -> Kind:
    """What this request does to the state; reads the body only for query-protocol calls."""
    method = environ.get("REQUEST_METHOD", "GET")
    if method not in _MUTATING_METHODS:
        return Kind.READ
    name = service(environ)
    if not name or name in NEVER_CONTROL:
        return Kind.READ
    rest = _rest(name, method, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
    if rest is not None:
        return rest
    act = action(environ)
    if not act or act.startswith(READS):
        return Kind.READ
    if act in DATA_ACTIONS.get(name, frozenset()):
        return Kind.DATA
    return Kind.CONTROL


def _rest(name: str, method: str, path: str, query: str) -> Kind | None:
    """The REST services' routes; None for the services that name their action."""
    if name == "lambda":
        if path.endswith(("/invocations", "/invoke-async", "/invoke-async/")):
            return Kind.DATA
        return Kind.CONTROL
    if name == "iot":
        return Kind.CONTROL
    if name == "iotdata":
        return Kind.CONTROL if "/shadow" in path else Kind.DATA
    if name == "s3":
        key = path.lstrip("/").partition("/")[2]
        if key or (method == "POST" and "delete" in parse_qs(query, keep_blank_values=True)):
            return Kind.DATA  # objects: the S3 part keeps them
        return Kind.CONTROL
    return None
