"""Small helpers every resource module shares: tags, waiters, retries, NotFound.

Kept here so each resource module is only the API calls that differ between services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from iotpipe.aws import error_code, is_not_found, retry_on_message
from iotpipe.poll import Backoff, retrying
from iotpipe.resources.base import Context

T = TypeVar("T")

# How long to keep retrying the documented IAM-propagation errors (REFERENCE.md: ~2 min).
IAM_PROPAGATION_TIMEOUT = 120.0
# Waiter pacing against the embedded AWS, where everything is immediate.
LOCAL_DELAY = 0.1
LOCAL_MAX_ATTEMPTS = 600
# Firehose and Lambda's answer to a delete while the resource is still creating or updating.
IN_USE = "ResourceInUseException"


def queue_enabled(ctx: Context) -> bool:
    """The failure queue is optional; everything that points at it asks here."""
    return bool(ctx.config.event_source.failure_queue)


def failure_queue_url(ctx: Context) -> str | None:
    """The queue's URL: from this run's outputs, else from SQS, else the standard form.

    The last case only happens in ``plan`` before the queue exists; SQS URLs are
    ``https://sqs.<region>.<dns suffix>/<account>/<name>`` on AWS.
    """
    if not queue_enabled(ctx):
        return None
    known = ctx.outputs.get("queue", {}).get("url")
    if known:
        return str(known)
    try:
        return str(ctx.client("sqs").get_queue_url(QueueName=ctx.names.queue)["QueueUrl"])
    except ClientError as exc:
        if not is_not_found(exc):
            raise
    suffix = "amazonaws.com.cn" if ctx.names.partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{ctx.names.region}.{suffix}/{ctx.names.account}/{ctx.names.queue}"


def wait(ctx: Context, service: str, waiter: str, **params: Any) -> None:
    """Run a boto3 waiter; against the embedded AWS poll fast instead of every few seconds."""
    config: dict[str, float] = {}
    if ctx.gateway.local:
        config = {"Delay": LOCAL_DELAY, "MaxAttempts": LOCAL_MAX_ATTEMPTS}
    ctx.client(service).get_waiter(waiter).wait(**params, WaiterConfig=config)


def retry_iam(
    ctx: Context, call: Callable[[], T], messages: tuple[str, ...], codes: tuple[str, ...]
) -> T:
    """Retry ``call`` while AWS says a just-created role is not usable yet (matched by text)."""
    return retry_on_message(
        call,
        messages,
        codes=codes,
        timeout=IAM_PROPAGATION_TIMEOUT,
        sleep=ctx.sleep,
        clock=ctx.clock,
    )


def deleted(call: Callable[[], Any], *also: str) -> bool:
    """Run a delete call: True if it deleted something, False if it was already gone.

    ``also`` adds service-specific codes that mean "not there" for this call only.
    """
    try:
        call()
    except ClientError as exc:
        if is_not_found(exc) or error_code(exc) in also:
            return False
        raise
    return True


def deleted_once_settled(
    ctx: Context, call: Callable[[], Any], *, timeout: float, backoff: Backoff
) -> bool:
    """:func:`deleted`, retried while the service refuses because the resource is still
    settling (a half-finished ``up`` left it creating or updating)."""

    def busy(exc: Exception) -> bool:
        return isinstance(exc, ClientError) and error_code(exc) == IN_USE

    return deleted(
        lambda: retrying(
            call, retry_if=busy, timeout=timeout, backoff=backoff, clock=ctx.poll_clock
        )
    )


def get_or_none(call: Callable[[], T], *also: str) -> T | None:
    """Run a read call; None when the resource does not exist (NotFound or ``also``)."""
    try:
        return call()
    except ClientError as exc:
        if is_not_found(exc) or error_code(exc) in also:
            return None
        raise
