"""Replacements for moto's Lambda: run the deployed zip, make mapping changes take effect.

moto invokes functions in Docker (none here: an error per record) and only stores event
source mappings; the pollers in `esm` run them, so create/update/delete notify the
manager at once, and Invoke goes to the function's worker process (`functions`).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from typing import Any

from iotpipe.local import motointernals as moto
from iotpipe.local.patching import service
from iotpipe.local.runtime import RUNTIME

LAMBDA = service("lambda")


@LAMBDA.patch(moto.LambdaFunction, "invoke")
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


@LAMBDA.patch(moto.LambdaBackend, "create_event_source_mapping", pass_original=True)
def create_esm(original: Callable[..., Any], self: Any, spec: dict[str, Any]) -> Any:
    esm = original(self, spec)
    if RUNTIME.esm is not None:
        RUNTIME.esm.on_created(esm)
    return esm


@LAMBDA.patch(moto.LambdaBackend, "update_event_source_mapping", pass_original=True)
def update_esm(original: Callable[..., Any], self: Any, uuid: str, spec: dict[str, Any]) -> Any:
    esm = original(self, uuid, spec)
    if RUNTIME.esm is not None:
        RUNTIME.esm.on_changed()
    return esm


@LAMBDA.patch(moto.LambdaBackend, "delete_event_source_mapping", pass_original=True)
def delete_esm(original: Callable[..., Any], self: Any, uuid: str) -> Any:
    esm = original(self, uuid)
    if esm is not None:
        moto.unmap_from_streams(self.account_id, self.region_name, esm)
    if RUNTIME.esm is not None:
        RUNTIME.esm.on_changed()
    return esm


@LAMBDA.patch(moto.EventSourceMapping, "get_configuration", pass_original=True)
def esm_configuration(original: Callable[..., dict[str, Any]], self: Any) -> dict[str, Any]:
    conf = original(self)
    if RUNTIME.esm is not None and ":kinesis:" in self.event_source_arn:
        conf["LastProcessingResult"] = RUNTIME.esm.result(self.uuid) or "No records processed"
    return conf


@LAMBDA.patch(
    moto.LambdaBackend,
    "send_kinesis_message",
    params="self function_name kinesis_stream kinesis_partition_key kinesis_sequence_number "
    "kinesis_data kinesis_shard_id",
)
def no_docker(self: Any, *args: Any, **kwargs: Any) -> None:
    """Mappings are run by the pollers in `esm`, never per record."""


@LAMBDA.patch(moto.LambdaStorage, "all")
def all_functions(self: Any) -> list[Any]:
    """LambdaStorage.all (ListFunctions) without deep copies.

    moto deep-copies every function (its code bytes included) only to give the copy a
    ``:$LATEST`` ARN; while a worker thread touches a function that copy can fail with
    "dictionary changed size during iteration" (an HTTP 500). A shallow copy gets the
    same ARN without walking the function's state.
    """
    result = []
    for group in moto.function_groups(self):
        latest = group.get("latest")
        if latest is not None:
            alias = copy.copy(latest)
            alias.function_arn = f"{latest.function_arn}:$LATEST"
            result.append(alias)
        result.extend(group.get("versions", []))
    return result
