"""Every use of moto's internals by the embedded AWS, in one file: review it on a moto upgrade.

moto's server is a library we reach into: its backend registries (``kinesis_backends``
...), private attributes (``LambdaStorage._functions``, ``_event_source_mappings``,
``Queue._messages``, ``Shard._shard_id``, ``BaseResponse._get_param``), its stores (a
shard's ``records``, a backend's ``rules`` or ``metric_data``) and the classes the patches
replace methods of. None of that is a public API, so it is all here, behind small
functions that say what they read; the rest of `iotpipe.local` imports moto only from this
module. Left where they are used: fields of moto's model objects that mirror the AWS
API (a mapping's ``batch_size``, a function's ``handler``), and a replacement's use of
its own ``self`` (it runs as a method of the moto class it is declared against).

Importing this module imports moto (about half a second): the CLI-side modules
(`lifecycle`, `inventory.describe`) must not import it at their top. A class moto moved or
renamed is a `PatchError` at import (see `patching.moto_imports`), so the emulator stops
at start with a message naming the moto version; a moved signature is caught by the
patches' self-test.

Why the dicts are copied with ``list()`` before iterating: moto's request threads insert
into them while pollers and status readers walk them.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from typing import Any

from iotpipe.local.patching import moto_imports, moto_version

with moto_imports():
    from moto.awslambda.models import (
        EventSourceMapping,
        LambdaBackend,
        LambdaFunction,
        LambdaStorage,
        lambda_backends,
    )
    from moto.cloudwatch.models import MetricAggregatedDatum, cloudwatch_backends
    from moto.core.exceptions import JsonRESTError
    from moto.core.utils import camelcase_to_underscores
    from moto.iam.models import iam_backends
    from moto.iot.exceptions import InvalidRequestException
    from moto.iot.models import FakeCertificate, FakeEndpoint, IoTBackend, iot_backends
    from moto.iotdata.models import IoTDataPlaneBackend
    from moto.kinesis.exceptions import InvalidArgumentError
    from moto.kinesis.models import KinesisBackend, Record, Shard, Stream, kinesis_backends
    from moto.kinesis.responses import KinesisResponse
    from moto.kinesis.utils import decompose_shard_iterator
    from moto.logs.models import logs_backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.sns.models import sns_backends
    from moto.sqs.models import Message, Queue, sqs_backends
    from moto.timestreamwrite.exceptions import ResourceNotFound
    from moto.timestreamwrite.models import TimestreamWriteBackend, timestreamwrite_backends
    from moto.timestreamwrite.responses import TimestreamWriteResponse

__all__ = [
    "DomainDispatcherApplication",
    "EventSourceMapping",
    "InvalidArgumentError",
    "InvalidRequestException",
    "IoTBackend",
    "IoTDataPlaneBackend",
    "JsonRESTError",
    "KinesisBackend",
    "KinesisResponse",
    "LambdaBackend",
    "LambdaFunction",
    "LambdaStorage",
    "Message",
    "Queue",
    "ResourceNotFound",
    "Shard",
    "Stream",
    "TimestreamWriteBackend",
    "TimestreamWriteResponse",
    "create_backend_app",
    "decompose_shard_iterator",
]

VERSION = moto_version()


# -- backend registries ------------------------------------------------------------------
def regional(backend_dict: Any) -> list[tuple[str, str, Any]]:
    """(account, region, backend) for every backend moto has created so far."""
    return [
        (account, region, backend)
        for account, regions in list(backend_dict.items())
        for region, backend in list(regions.items())
    ]


def global_backends(backend_dict: Any) -> list[tuple[str, Any]]:
    """IAM is global: moto keeps one backend per account under the "global" region."""
    return [(account, regions["global"]) for account, regions in list(backend_dict.items())]


def kinesis_backend(account: str, region: str) -> KinesisBackend:
    return kinesis_backends[account][region]


def lambda_backend(account: str, region: str) -> LambdaBackend:
    return lambda_backends[account][region]


def iot_backend(account: str, region: str) -> IoTBackend:
    return iot_backends[account][region]


# -- Lambda --------------------------------------------------------------------------------
def function_groups(storage: Any) -> list[Mapping[str, Any]]:
    """A `LambdaStorage`'s per-function ``{"latest": fn, "versions": [...]}`` groups."""
    return list(storage._functions.values())


def latest_functions(backend: Any) -> list[Any]:
    """The $LATEST of every function, read in place.

    Not ``backend._lambdas.all()``: that deep-copies every function (code bytes included)
    while worker threads update them, which is slow and can fail with "dictionary changed
    size during iteration".
    """
    groups = function_groups(backend._lambdas)
    return [g["latest"] for g in groups if g.get("latest") is not None]


def all_latest_functions() -> list[tuple[str, str, Any]]:
    """(account, region, function) for the $LATEST of every function everywhere."""
    return [
        (account, region, fn)
        for account, region, backend in regional(lambda_backends)
        for fn in latest_functions(backend)
    ]


def function(account: str, region: str, arn: str) -> Any:
    """The function a mapping names, None if it is gone."""
    try:
        return lambda_backend(account, region).get_function(arn)
    except Exception:
        return None


def event_source_mappings(backend: Any) -> list[Any]:
    return list(backend._event_source_mappings.values())


def all_event_source_mappings() -> list[tuple[str, str, Any]]:
    """(account, region, mapping) for every event source mapping everywhere."""
    return [
        (account, region, esm)
        for account, region, backend in regional(lambda_backends)
        for esm in event_source_mappings(backend)
    ]


# -- Kinesis -------------------------------------------------------------------------------
def streams(backend: Any) -> list[Any]:
    return list(backend.streams.values())


def all_streams() -> list[Any]:
    return [s for _, _, b in regional(kinesis_backends) for s in streams(b)]


def stream_by_arn(arn: str) -> Any:
    """The stream with that ARN, None if there is none (or it is not a Kinesis ARN)."""
    if ":kinesis:" not in arn:
        return None
    region, account = arn.split(":")[3], arn.split(":")[4]
    for stream in streams(kinesis_backend(account, region)):
        if stream.arn == arn:
            return stream
    return None


def shards(stream: Any) -> list[Any]:
    return list(stream.shards.values())


def shard_records(shard: Any) -> dict[int, Any]:
    """A shard's record store, keyed by sequence number (moto's own dict, not a copy)."""
    records: dict[int, Any] = shard.records
    return records


def shard_index(shard: Any) -> int:
    """The shard's number (``shardId-000000000003`` -> 3)."""
    return int(shard._shard_id)


def new_record(partition_key: str, data: str, seq: int, explicit_hash_key: str) -> Any:
    return Record(partition_key, data, seq, explicit_hash_key)


def record_from(
    seq: int, arrival: float, partition_key: str, explicit_hash_key: str | None, data: str
) -> Any:
    """A moto Record as it was stored (its arrival time kept; no constructor: it stamps now)."""
    record = Record.__new__(Record)
    record.__dict__.update(
        partition_key=partition_key,
        data=data,
        sequence_number=seq,
        explicit_hash_key=explicit_hash_key,
        created_at_datetime=datetime.datetime.fromtimestamp(arrival, datetime.UTC).replace(
            tzinfo=None
        ),
        created_at=arrival,
    )
    return record


def set_shard_records(shard: Any, records: Any) -> None:
    """Give the shard its record store (`kinesisstore`) in place of moto's OrderedDict."""
    shard.records = records


def shard_key(stream: Any, shard: Any) -> tuple[str, str, str, str]:
    """(account, region, stream name, shard id): where the shard's records live."""
    return (stream.account_id, stream.region, stream.stream_name, shard.shard_id)


def unmap_from_streams(account: str, region: str, esm: Any) -> None:
    """Drop a deleted mapping from the stream that still holds it (moto forgets to)."""
    arn = esm.event_source_arn
    for stream in streams(kinesis_backend(account, region)):
        if stream.lambda_event_source_mappings.get(arn) is esm:
            del stream.lambda_event_source_mappings[arn]


def put_record(
    account: str, region: str, stream_name: str, key: str, hash_key: str | None, data: str
) -> None:
    # moto annotates stream_arn and explicit_hash_key as str, but its implementation (and
    # its own PutRecord handler, which passes the optional request parameters through)
    # takes None for both: a gap in moto's annotations.
    kinesis_backend(account, region).put_record(
        stream_arn=None,  # type: ignore[arg-type]
        stream_name=stream_name,
        partition_key=key,
        explicit_hash_key=hash_key,  # type: ignore[arg-type]
        data=data,
    )


# -- SQS and SNS ---------------------------------------------------------------------------
def queues(backend: Any) -> list[Any]:
    return list(backend.queues.values())


def all_queues() -> list[Any]:
    return [q for _, _, b in regional(sqs_backends) for q in queues(b)]


def queued(queue: Any) -> int:
    """Messages in the queue, visible, delayed or in flight (no attribute scan)."""
    return len(queue._messages)


def queue_depth(account: str, region: str, queue_name: str) -> int:
    """Messages in a queue (visible and in flight), 0 if it does not exist."""
    queue = sqs_backends[account][region].queues.get(queue_name)
    return 0 if queue is None else queued(queue)


class Unavailable(JsonRESTError):
    code = 503  # AWS-shaped ServiceUnavailable: not done (a full disk, say), retry later

    def __init__(self, message: str) -> None:
        super().__init__("ServiceUnavailable", message)


def send_message(account: str, region: str, queue_name: str, body: str) -> None:
    """SendMessage into moto's SQS (raises if the queue does not exist)."""
    sqs_backends[account][region].send_message(queue_name, body)


def sns_publish(account: str, region: str, topic_arn: str, body: str) -> None:
    sns_backends[account][region].publish(body, arn=topic_arn)


def snake(name: str) -> str:
    """moto's attribute name for an API name (``VisibilityTimeout`` -> ``visibility_timeout``)."""
    return str(camelcase_to_underscores(name))


# -- IoT -----------------------------------------------------------------------------------
def topic_rules(account: str, region: str) -> list[Any]:
    return list(iot_backend(account, region).rules.values())


def all_topic_rules() -> list[tuple[str, str, Any]]:
    return [(a, r, rule) for a, r, b in regional(iot_backends) for rule in list(b.rules.values())]


def iot_registries() -> list[tuple[str, str, IoTBackend]]:
    """(account, region, backend) of every IoT registry (the broker serves them all)."""
    return regional(iot_backends)


def certificates(backend: Any) -> dict[str, Any]:
    """certificateId -> FakeCertificate (moto's own dict: ``.get`` it, ``list()`` it)."""
    found: dict[str, Any] = backend.certificates
    return found


def new_certificate(backend: Any, pem: str, active: bool) -> Any:
    """A FakeCertificate for that backend's account and region, not yet registered."""
    status = "ACTIVE" if active else "INACTIVE"
    return FakeCertificate(pem, status, backend.account_id, backend.region_name)


def register_certificate(backend: Any, certificate_id: str, cert: Any) -> None:
    backend.certificates[certificate_id] = cert


def principal_policies(backend: Any) -> list[tuple[Any, Any]]:
    """((principal ARN, policy name), (principal, FakePolicy)) pairs."""
    return list(backend.principal_policies.items())


def principal_things(backend: Any) -> list[tuple[Any, Any]]:
    """((principal ARN, thing name), (principal, FakeThing)) pairs."""
    return list(backend.principal_things.items())


def thing_groups(backend: Any) -> list[Any]:
    return list(backend.thing_groups.values())


def new_endpoint(backend: Any, endpoint_type: str) -> Any:
    """A FakeEndpoint (it validates the type: InvalidRequestException), made the backend's."""
    endpoint = FakeEndpoint(endpoint_type, backend.region_name)
    backend.endpoint = endpoint
    return endpoint


def trim_published(backend: Any, keep: int) -> None:
    """moto keeps every published payload; keep the last `keep`."""
    if len(backend.published_payloads) > keep:
        del backend.published_payloads[:-keep]


# -- Timestream, IAM, CloudWatch, Logs -------------------------------------------------------
def timestream_table_count() -> int:
    return sum(
        len(db.tables)
        for _, _, b in regional(timestreamwrite_backends)
        for db in list(b.databases.values())
    )


def iam_role_count() -> int:
    return sum(len(b.roles) for _, b in global_backends(iam_backends))


def issued_secret(access_key: str) -> str | None:
    """The secret of an access key moto's IAM issued (any account), None if unknown."""
    for account in list(iam_backends.values()):
        for backend in list(account.values()):
            key = backend.access_keys.get(access_key)
            if key is not None:
                return str(key.secret_access_key)
    return None


def cloudwatch_backend(account: str, region: str) -> Any:
    return cloudwatch_backends[account][region]


def add_metric(backend: Any, **datum: Any) -> Any:
    """One aggregated datum (sum, min, max, count) appended to the backend; returned."""
    made = MetricAggregatedDatum(**datum)
    backend.metric_data.append(made)
    return made


def put_log_events(
    account: str, region: str, group: str, stream: str, events: list[dict[str, Any]]
) -> None:
    logs = logs_backends[account][region]
    logs.ensure_log_group(group)
    logs.ensure_log_stream(group, stream)
    logs.groups[group].streams[stream].put_log_events(events)


# -- responses -----------------------------------------------------------------------------
def request_param(response: Any, name: str) -> Any:
    """A request parameter as moto's responder parses it (the body again on every call)."""
    return response._get_param(name)


def request_body(response: Any) -> dict[str, Any]:
    """The JSON request body, parsed once."""
    body = json.loads(response.body or "{}")
    return body if isinstance(body, dict) else {}
