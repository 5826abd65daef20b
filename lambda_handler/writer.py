"""WriteRecords: clients, the bounded pool, and what each failure means for the data.

Why the classification matters: Kinesis retries a batch from the lowest sequence number
reported, so a permanent error reported as retryable blocks the shard, while a transient
error treated as permanent loses data. Here:
- success: every record written;
- RejectedRecordsException: the records listed are refused for good (version conflict,
  retention, limits) and go to the quarantine; the others were written;
- ValidationException / parameter validation: some record is malformed; each record is
  re-sent alone to find which, the rest are written;
- anything else (throttling and 5xx after botocore's own retries, access or missing
  table, network): transient - the owning messages are reported for retry.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError

from . import wire
from .records import Request

MAX_IN_FLIGHT = 16  # concurrent AWS requests per invocation (writes + queue sends)
RETRIES = {"mode": "standard", "total_max_attempts": 5}  # 1 call + up to 4 retries
_lock = threading.Lock()
_clients: dict[str, Any] = {}
_executor: ThreadPoolExecutor | None = None


@dataclass(slots=True)
class WriteResult:
    """Per record position in the request: permanently rejected, or failed for now."""

    rejected: dict[int, str] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


def client_config() -> Any:
    """One configuration for every client: standard retries back off on throttling and
    5xx; the pool is as wide as the number of requests in flight; no client-side
    parameter validation (see make_client)."""
    # Deferred, like boto3 in make_client: botocore.config costs ~0.15 s to import, paid
    # only when a client is built (not by tests that inject clients).
    from botocore.config import Config

    return Config(
        retries=dict(RETRIES),
        max_pool_connections=MAX_IN_FLIGHT,
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra="iotpipe-handler",
        parameter_validation=False,
    )


def endpoint_url(service_env: str, environ: Mapping[str, str] | None = None) -> str | None:
    """AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL, passed to boto3 explicitly.

    boto3 honours these variables itself, but only an explicit endpoint_url switches
    off Timestream's endpoint discovery, which would otherwise send the client to an
    AWS hostname even when it is pointed at a local emulator.
    """
    env = os.environ if environ is None else environ
    return env.get(f"AWS_ENDPOINT_URL_{service_env}") or env.get("AWS_ENDPOINT_URL") or None


def make_client(service: str, environ: Mapping[str, str] | None = None) -> Any:
    """A boto3 client with our configuration and endpoint (Timestream: see wire.py).

    Client-side parameter validation is off: every parameter is built by this package
    (records.py, quarantine.py), whose output the tests check against the service
    models (Stubber validates each call), and re-validating 100 records field by field
    on every call cost about a third of the function's CPU per message. The services
    still validate; a ValidationException is handled (see write()).
    """
    import boto3  # deferred: a heavy import, paid only when a client is built

    env_name = service.upper().replace("-", "_")
    client = boto3.client(
        service, endpoint_url=endpoint_url(env_name, environ), config=client_config()
    )
    return wire.enable(client) if service == "timestream-write" else client


def cached_client(service: str) -> Any:
    """One client per service per container: created on first use, reused while warm."""
    with _lock:
        if service not in _clients:
            _clients[service] = make_client(service)
        return _clients[service]


def shared_executor() -> ThreadPoolExecutor:
    """The container's bounded pool; threads survive between warm invocations."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="iotpipe")
        return _executor


class InlineExecutor(Executor):
    """Runs each task at once in the caller's thread: deterministic order for tests."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def write(client: Any, database: str, table: str, request: Request) -> WriteResult:
    """Send one request and say, per record, what happened to it."""
    count = len(request.records)
    params = request.params(database, table)
    try:
        client.write_records(**(wire.call_args(params) if wire.enabled(client) else params))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Unknown"), error.get("Message", "")
        if code == "RejectedRecordsException":
            return WriteResult(rejected=rejected_records(exc.response, count))
        if code == "ValidationException":
            return _invalid(client, database, table, request, f"{code}: {message}")
        return WriteResult(failed=dict.fromkeys(range(count), f"{code}: {message}"))
    except ParamValidationError as exc:
        return _invalid(client, database, table, request, f"ParamValidationError: {exc}")
    except Exception as exc:  # network, timeouts: botocore has already retried them
        return WriteResult(failed=dict.fromkeys(range(count), f"{type(exc).__name__}: {exc}"))
    return WriteResult()


def rejected_records(response: Mapping[str, Any], count: int) -> dict[int, str]:
    """RejectedRecords -> {position: reason}. Records not listed were written."""
    rejected = {}
    for entry in response.get("RejectedRecords") or ():
        index = entry.get("RecordIndex")
        if isinstance(index, int) and 0 <= index < count:
            reason = entry.get("Reason") or "rejected"
            if entry.get("ExistingVersion") is not None:
                reason += f" (existing version {entry['ExistingVersion']})"
            rejected[index] = reason
    return rejected


def _invalid(client: Any, database: str, table: str, request: Request, why: str) -> WriteResult:
    """A request Timestream refused as a whole: find the bad record(s) by re-sending
    each record alone, so one malformed reading cannot hold back the other 99."""
    if len(request.records) == 1:
        return WriteResult(rejected={0: why})
    merged = WriteResult()
    for position in range(len(request.records)):
        alone = write(client, database, table, request.only(position))
        if alone.rejected:
            merged.rejected[position] = alone.rejected[0]
        if alone.failed:
            merged.failed[position] = alone.failed[0]
    return merged
