"""moto, fixed where it hurts this pipeline: every change is one class attribute, checked.

Each entry of `PATCHES` names a moto class attribute, the parameters we expect it to take
and its replacement. `self_test()` runs before anything is replaced: if an attribute is
gone or its signature moved, the emulator refuses to start with a message naming the
moto version (moto is pinned to a minor version; a new one needs this table reviewed).
A property is patched the same way (its getter's parameters are checked).
The replacements live in `kinesispatch`, `lambdapatch`, `tspatch`, `iotpatch`, `sqspatch`.

What is changed and why:
- Server: the backend lookup per request is cached (moto scans its package directory).
- Kinesis: O(1) sequence numbers (moto lists every key on every put), a thread-safe put,
  56-digit sequence numbers like AWS's (string order = numeric order), O(limit)
  GetRecords, a PutRecords response built without moto's slow generic serializer, no
  per-record Lambda invocation (pollers run mappings, see `esm`), shard iterators a shell
  does not split (no newline), and PutRecord refusing a record over 1 MiB.
- SQS: a queue's attributes compute the message counts only when read, so SendMessage
  (which reads one attribute) no longer scans every queued message.
- SQS: a message's visible/delayed checks (every receive and count scans the queue with
  them) read ``time.time()`` instead of building two datetimes per message.
- Lambda: invoke runs the deployed zip in a worker process (not Docker); mapping create,
  update and delete take effect at once; LastProcessingResult is reported; listing
  functions makes shallow copies (moto's deep copies race with the workers: HTTP 500).
- Timestream: writes merge CommonAttributes and land in DuckDB (duplicates and conflicts
  behave as on AWS); queries run on DuckDB; DescribeEndpoints answers with the emulator's
  own address; creating an existing database/table is a ConflictException, not a wipe.
- IoT: publish runs matching topic rules; rules outside the supported subset are refused.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from iotpipe.local import iotpatch as iot
from iotpipe.local import kinesispatch as kin
from iotpipe.local import lambdapatch as lam
from iotpipe.local import sqspatch as sqs
from iotpipe.local import sqsread
from iotpipe.local import tspatch as ts
from iotpipe.local.runtime import ORIGINALS, RUNTIME

__all__ = ["PATCHES", "RUNTIME", "Patch", "PatchError", "apply", "self_test"]


class PatchError(RuntimeError):
    """moto no longer has what a patch replaces: refuse to start."""


@dataclass(frozen=True)
class Patch:
    module: str
    cls: str
    attr: str
    params: tuple[str, ...]
    replacement: Callable[..., Any] | property


def _p(target: str, params: str, replacement: Callable[..., Any] | property) -> Patch:
    """`target` is ``module:Class.attr``; `params` its parameter names, space-separated."""
    module, _, rest = target.partition(":")
    cls, _, attr = rest.partition(".")
    return Patch(module, cls, attr, tuple(params.split()), replacement)


_K, _L, _TR, _TM = (
    "moto.kinesis.models",
    "moto.awslambda.models",
    "moto.timestreamwrite.responses",
    "moto.timestreamwrite.models",
)
PATCHES: list[Patch] = [
    _p(
        "moto.moto_server.werkzeug_app:DomainDispatcherApplication.get_backend_for_host",
        "self host",
        kin.backend_for_host,
    ),
    _p(f"{_K}:Shard.get_max_sequence_number", "self", kin.max_seq),
    _p(f"{_K}:Shard.get_min_sequence_number", "self", kin.min_seq),
    _p(f"{_K}:Shard.get_records", "self last_sequence_id limit", kin.get_records),
    _p(f"{_K}:Stream.put_record", "self partition_key explicit_hash_key data", kin.put_record),
    _p(
        f"{_K}:KinesisBackend.get_shard_iterator",
        "self stream_arn stream_name shard_id shard_iterator_type starting_sequence_number at_timestamp",
        kin.get_shard_iterator,
    ),
    _p(
        f"{_K}:KinesisBackend.get_records",
        "self stream_arn shard_iterator limit",
        kin.backend_get_records,
    ),
    _p("moto.sqs.models:Queue.attributes", "self", sqs.attributes),
    _p("moto.sqs.models:Message.visible", "self", sqsread.visible),
    _p("moto.sqs.models:Message.delayed", "self", sqsread.delayed),
    _p("moto.kinesis.responses:KinesisResponse.put_records", "self", kin.put_records_response),
    _p(
        f"{_L}:LambdaBackend.send_kinesis_message",
        "self function_name kinesis_stream kinesis_partition_key kinesis_sequence_number kinesis_data kinesis_shard_id",
        lam.no_docker,
    ),
    _p(f"{_L}:LambdaFunction.invoke", "self body request_headers response_headers", lam.invoke),
    _p(f"{_L}:LambdaBackend.create_event_source_mapping", "self spec", lam.create_esm),
    _p(f"{_L}:LambdaBackend.update_event_source_mapping", "self uuid spec", lam.update_esm),
    _p(f"{_L}:LambdaBackend.delete_event_source_mapping", "self uuid", lam.delete_esm),
    _p(f"{_L}:EventSourceMapping.get_configuration", "self", lam.esm_configuration),
    _p(f"{_L}:LambdaStorage.all", "self", lam.all_functions),
    _p(f"{_TR}:TimestreamWriteResponse.write_records", "self", ts.write_records),
    _p(f"{_TR}:TimestreamWriteResponse.describe_endpoints", "self", ts.describe_endpoints),
    _p(f"{_TR}:TimestreamWriteResponse.query", "self", ts.query),
    _p(
        f"{_TM}:TimestreamWriteBackend.create_database",
        "self database_name kms_key_id tags",
        ts.create_database,
    ),
    _p(
        f"{_TM}:TimestreamWriteBackend.create_table",
        "self database_name table_name retention_properties tags magnetic_store_write_properties schema",
        ts.create_table,
    ),
    _p(
        f"{_TM}:TimestreamWriteBackend.delete_table",
        "self database_name table_name",
        ts.delete_table,
    ),
    _p(f"{_TM}:TimestreamWriteBackend.delete_database", "self database_name", ts.delete_database),
    _p("moto.iotdata.models:IoTDataPlaneBackend.publish", "self topic payload", iot.publish),
    _p(
        "moto.iot.models:IoTBackend.create_topic_rule",
        "self rule_name sql kwargs",
        iot.validated("create_topic_rule"),
    ),
    _p(
        "moto.iot.models:IoTBackend.replace_topic_rule",
        "self rule_name kwargs",
        iot.validated("replace_topic_rule"),
    ),
]


def _target(p: Patch) -> tuple[type, Any]:
    cls = getattr(importlib.import_module(p.module), p.cls)
    return cls, cls.__dict__.get(p.attr)


def self_test(patches: list[Patch] | None = None) -> None:
    """Check every patched attribute still exists with the expected parameters."""
    import moto

    problems = []
    for p in patches or PATCHES:
        try:
            _, current = _target(p)
        except (ImportError, AttributeError) as e:
            problems.append(f"{p.module}.{p.cls}: {e}")
            continue
        key = (p.module, p.cls, p.attr)
        if current is p.replacement:  # already applied in this process
            current = ORIGINALS.get(key)
        if isinstance(current, property) and current.fget is not None:
            current = current.fget
        if current is None or not callable(current):
            problems.append(f"{p.module}.{p.cls}.{p.attr} is missing")
            continue
        params = tuple(inspect.signature(current).parameters)
        if params != p.params:
            problems.append(f"{p.module}.{p.cls}.{p.attr}{params} (expected {p.params})")
    if problems:
        raise PatchError(
            f"moto {moto.__version__} is not the moto iotpipe's embedded AWS was built for "
            f"(pinned: moto[server]>=5.2.1,<5.3). Changed: " + "; ".join(problems)
        )


def apply(patches: list[Patch] | None = None) -> None:
    """Self-test, then replace (idempotent)."""
    self_test(patches)
    for p in patches or PATCHES:
        cls, current = _target(p)
        key = (p.module, p.cls, p.attr)
        if current is not p.replacement:
            ORIGINALS[key] = current
            setattr(cls, p.attr, p.replacement)
    ts.add_actions()  # actions moto lacks (Timestream CancelQuery): added, nothing replaced
