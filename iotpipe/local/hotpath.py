"""The calls that carry the data, answered without Flask and moto's dispatch.

Why: a PutRecords or WriteRecords spent ~1.7 ms of the emulator's one busy core in
werkzeug's request object, Flask's routing and moto's ``BaseResponse`` set-up (header
copies, querystring and body parsing, action lookup by reflection) before any work, and
those two calls are nearly every request while data flows. Here, after `guard` has
checked the request, the same handler moto's dispatch would call
(`kinesispatch.put_records_response`, `tspatch.write_records`) runs on `Call`, a stand-in
holding just what those handlers read; a raised moto error is rendered as moto renders it
(its status, body and ``X-Amzn-ErrorType``). Every other call goes through moto as before.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import HTTPException

from iotpipe.local import kinesispatch, sigv4, tspatch
from iotpipe.local import motointernals_hot as moto
from iotpipe.local.guard import read_body

log = logging.getLogger("iotpipe.local")

HANDLERS: dict[str, tuple[Callable[[Any], str], str]] = {
    "Kinesis_20131202.PutRecords": (kinesispatch.put_records_response, "1.1"),
    "Timestream_20181101.WriteRecords": (tspatch.write_records, "1.0"),
}


class Call:
    """What the handlers read of moto's ``BaseResponse``."""

    def __init__(self, environ: dict[str, Any], body: bytes) -> None:
        self.body = body.decode("utf-8", errors="replace")
        self.headers = {"Host": str(environ.get("HTTP_HOST", ""))}
        signed = sigv4.parse(environ)  # `guard` has verified it
        self.current_account = moto.account_for(environ, signed.access_key if signed else None)
        self.region = (signed.region if signed else "") or "us-east-1"

    @property
    def kinesis_backend(self) -> Any:
        return moto.kinesis(self.current_account, self.region)

    @property
    def timestreamwrite_backend(self) -> Any:
        return moto.timestream(self.current_account, self.region)


def handles(environ: dict[str, Any]) -> bool:
    return (
        environ.get("HTTP_X_AMZ_TARGET") in HANDLERS
        and environ.get("REQUEST_METHOD") == "POST"
        and environ.get("PATH_INFO") == "/"
    )


def answer(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Run the call's handler; reply as moto would (call only when `handles`)."""
    handler, json_version = HANDLERS[str(environ["HTTP_X_AMZ_TARGET"])]
    status, headers = "200 OK", [("Content-Type", f"application/x-amz-json-{json_version}")]
    try:
        text = handler(Call(environ, read_body(environ)))
    except ValueError as error:  # not JSON (or not UTF-8): what AWS calls SerializationException
        status = "400 Bad Request"
        text = json.dumps({"__type": "SerializationException", "message": f"{error}"[:200]})
    except HTTPException as error:  # moto's RESTError family: an AWS error reply
        status = f"{error.code} {error.name}"
        headers = list(error.get_headers()) if hasattr(error, "get_headers") else headers
        text = str(error.description)
    except Exception:
        log.exception("%s failed", environ["HTTP_X_AMZ_TARGET"])
        status = "500 Internal Server Error"
        text = json.dumps({"__type": "InternalFailure", "message": "internal error"})
    data = text.encode()
    headers += [("Content-Length", str(len(data))), ("x-amzn-RequestId", str(uuid.uuid4()))]
    start_response(status, headers)
    return [data]
