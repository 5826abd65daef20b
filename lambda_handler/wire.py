"""WriteRecords bodies serialised by the C JSON encoder instead of botocore's serializer.

Why: botocore's JSON serializer walks the service model in Python for every value; a
100-record multi-measure request has about 1,500 of them, and that walk was the largest
single CPU cost of the function (Lambda at 256 MB has a fraction of a vCPU). For
WriteRecords the body botocore produces is exactly `json.dumps(params)`: the input has
only strings, lists and structures, no renamed members, timestamps or blobs, and
botocore keeps the caller's key order and json.dumps' defaults. So the caller passes
the finished body in a private parameter; a `before-parameter-build` handler takes it
out (botocore then serialises a near-empty request cheaply) and a `before-call` handler
puts it in place of botocore's body, before signing. Endpoint resolution, signing,
retries and error parsing stay botocore's; both events are botocore's public extension
points. tests/unit/handler/test_handler_writer.py checks byte-for-byte equality with botocore's
own serialisation (with parameter validation on) for both record layouts.
"""

from __future__ import annotations

import json
import weakref
from typing import Any

BODY_PARAM = "IotpipePrebuiltBody"
_CONTEXT_KEY = "iotpipe_prebuilt_body"
_EVENT = "timestream-write.WriteRecords"
_enabled: weakref.WeakSet[Any] = weakref.WeakSet()


def enable(client: Any) -> Any:
    """Install the two handlers on a timestream-write client; returns the client."""
    events = client.meta.events
    events.register_first(
        f"before-parameter-build.{_EVENT}", _take_body, unique_id="iotpipe-wire-take"
    )
    events.register_last(f"before-call.{_EVENT}", _put_body, unique_id="iotpipe-wire-put")
    _enabled.add(client)
    return client


def enabled(client: Any) -> bool:
    """Whether `client` went through enable() (fakes and Stubber clients do not)."""
    try:
        return client in _enabled
    except TypeError:  # an unhashable or non-weakrefable fake
        return False


def call_args(params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `client.write_records` that carry `params` pre-serialised."""
    return {
        "DatabaseName": params["DatabaseName"],
        "TableName": params["TableName"],
        "Records": [],
        BODY_PARAM: json.dumps(params).encode("utf-8"),
    }


def _take_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    body = params.pop(BODY_PARAM, None)
    if body is not None:
        context[_CONTEXT_KEY] = body


def _put_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    body = context.get(_CONTEXT_KEY)
    if body is not None:
        params["body"] = body
