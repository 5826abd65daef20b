"""Replacements for moto's Lambda: run the deployed zip, make mapping changes take effect.

moto invokes functions in Docker (none here: an error per record) and only stores event
source mappings; the pollers in `esm` run them, so create/update/delete notify the
manager at once, and Invoke goes to the function's worker process (`functions`).
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

from iotpipe.local.runtime import RUNTIME, original


def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
    """Lambda Invoke (and moto's internal invokes) run the deployed zip in its worker."""
    event = json.loads(body) if body else {}
    if (request_headers or {}).get("x-amz-invocation-type") == "Event":
        threading.Thread(target=RUNTIME.pool.invoke, args=(self, event), daemon=True).start()
        return b""
    result = RUNTIME.pool.invoke(self, event)
    if result.ok:
        return json.dumps(result.payload).encode()
    response_headers["x-amz-function-error"] = "Unhandled"
    return json.dumps(result.error).encode()


def create_esm(self: Any, spec: dict[str, Any]) -> Any:
    esm = original("moto.awslambda.models", "LambdaBackend", "create_event_source_mapping")(
        self, spec
    )
    if RUNTIME.esm is not None:
        RUNTIME.esm.on_created(esm)
    return esm


def update_esm(self: Any, uuid: str, spec: dict[str, Any]) -> Any:
    fn = original("moto.awslambda.models", "LambdaBackend", "update_event_source_mapping")
    esm = fn(self, uuid, spec)
    if RUNTIME.esm is not None:
        RUNTIME.esm.on_changed()
    return esm


def delete_esm(self: Any, uuid: str) -> Any:
    fn = original("moto.awslambda.models", "LambdaBackend", "delete_event_source_mapping")
    esm = fn(self, uuid)
    if esm is not None:
        from moto.kinesis.models import kinesis_backends

        arn = esm.event_source_arn
        for stream in list(kinesis_backends[self.account_id][self.region_name].streams.values()):
            if stream.lambda_event_source_mappings.get(arn) is esm:
                del stream.lambda_event_source_mappings[arn]
    if RUNTIME.esm is not None:
        RUNTIME.esm.on_changed()
    return esm


def esm_configuration(self: Any) -> dict[str, Any]:
    conf = original("moto.awslambda.models", "EventSourceMapping", "get_configuration")(self)
    if RUNTIME.esm is not None and ":kinesis:" in self.event_source_arn:
        conf["LastProcessingResult"] = RUNTIME.esm.result(self.uuid) or "No records processed"
    return conf


def no_docker(self: Any, *args: Any, **kwargs: Any) -> None:
    """Mappings are run by the pollers in `esm`, never per record."""


def all_functions(self: Any) -> list[Any]:
    """LambdaStorage.all (ListFunctions) without deep copies.

    moto deep-copies every function (its code bytes included) only to give the copy a
    ``:$LATEST`` ARN; while a worker thread touches a function that copy can fail with
    "dictionary changed size during iteration" (an HTTP 500). A shallow copy gets the
    same ARN without walking the function's state.
    """
    result = []
    for group in list(self._functions.values()):
        latest = group.get("latest")
        if latest is not None:
            alias = copy.copy(latest)
            alias.function_arn = f"{latest.function_arn}:$LATEST"
            result.append(alias)
        result.extend(group.get("versions", []))
    return result
