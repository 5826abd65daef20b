"""The one place that builds boto3 clients, plus the retry-on-message helper.

Everything that talks to AWS gets its clients from a :class:`Gateway`, so profile, region,
endpoint (the embedded AWS or a moto server), retry mode and user agent are decided once,
and tests can hook every call (e.g. to count mutating ones) in one place.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.loaders
import botocore.session
from botocore.exceptions import ClientError

from iotpipe import __version__
from iotpipe.poll import Backoff, Clock, retrying

T = TypeVar("T")

LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message", ""))
    return str(exc)


NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "NoSuchEntity",
        "NoSuchEntityException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)


def is_not_found(exc: BaseException) -> bool:
    """NotFound in all the spellings this stack's services use."""
    return error_code(exc) in NOT_FOUND_CODES


@dataclass
class Gateway:
    """Clients for one target. ``endpoint_url=None`` lets boto3 resolve it (incl. env vars)."""

    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    local: bool = False
    retry_mode: str = "standard"
    max_attempts: int = 8
    hooks: list[Callable[[Any], None]] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: boto3.session.Session | None = field(default=None, repr=False)
    _identity: dict[str, str] | None = field(default=None, repr=False)

    def session(self) -> boto3.session.Session:
        if self._session is None:
            kwargs: dict[str, Any] = {"region_name": self.region, "botocore_session": _botocore()}
            if self.local:
                kwargs.update(LOCAL_CREDENTIALS)
            elif self.profile:
                kwargs["profile_name"] = self.profile
            self._session = boto3.session.Session(**kwargs)
        return self._session

    def client(self, service: str, endpoint_url: str | None = None) -> Any:
        """A cached client; boto3 clients are thread-safe, sessions are not (hence the lock).

        ``endpoint_url`` is for the one service whose endpoint is per account (``iot-data``
        on AWS); otherwise the gateway's endpoint, if any, applies.
        """
        endpoint = endpoint_url or self.endpoint_url
        with self._lock:
            cache_key = f"{service}@{endpoint_url}" if endpoint_url else service
            if cache_key not in self._clients:
                cfg = botocore.config.Config(
                    retries={"mode": self.retry_mode, "max_attempts": self.max_attempts},
                    user_agent_extra=f"iotpipe/{__version__}",
                    connect_timeout=10,
                    read_timeout=70,
                )
                kwargs: dict[str, Any] = {"config": cfg}
                if endpoint:
                    kwargs["endpoint_url"] = endpoint
                client = self.session().client(service, **kwargs)
                for hook in self.hooks:
                    hook(client)
                self._clients[cache_key] = client
            return self._clients[cache_key]

    def identity(self) -> dict[str, str]:
        """Account, partition and caller ARN; ARNs are built from these, never hard-coded."""
        if self._identity is None:
            ident = self.client("sts").get_caller_identity()
            arn = ident["Arn"]
            self._identity = {
                "account": ident["Account"],
                "arn": arn,
                "partition": arn.split(":")[1],
            }
        return self._identity


@functools.cache
def _shared_loader() -> botocore.loaders.Loader:
    """One loader of botocore's service models per process: every gateway's session would
    otherwise parse the same JSON again (0.2 s for the pipeline's dozen services, paid by
    every in-process command: the demo, the tests). The loader only reads files."""
    return botocore.loaders.create_loader()


def _botocore() -> botocore.session.Session:
    session = botocore.session.Session()
    session.register_component("data_loader", _shared_loader())
    return session


def retry_on_message(
    call: Callable[[], T],
    messages: tuple[str, ...],
    *,
    codes: tuple[str, ...] = (),
    timeout: float = 120.0,
    base: float = 1.0,
    cap: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: Callable[[ClientError, float], None] | None = None,
) -> T:
    """Retry ``call`` while it fails with one of the documented eventual-consistency errors.

    IAM changes take seconds to reach Lambda, Kinesis and IoT; each service says so with its
    own message under a generic code (InvalidParameterValueException, InvalidRequestException),
    which also means real mistakes. So we match the message text (and optionally the code),
    back off exponentially with equal jitter (a pause of at least half the step: retrying a
    role that has not propagated at once is pointless, and only this process competes), and
    give up after ``timeout`` seconds, re-raising the last error.
    """

    def propagating(exc: Exception) -> bool:
        if not isinstance(exc, ClientError):
            return False
        text = error_message(exc).lower()
        matches = any(m.lower() in text for m in messages)
        return matches and (not codes or error_code(exc) in codes)

    def report(exc: Exception, pause: float) -> None:
        if on_retry is not None and isinstance(exc, ClientError):
            on_retry(exc, pause)

    return retrying(
        call,
        retry_if=propagating,
        timeout=timeout,
        backoff=Backoff(first=base, factor=2.0, cap=cap, jitter="equal"),
        clock=Clock(sleep=sleep, now=clock),
        on_retry=report,
    )


def tag_list(
    tags: Mapping[str, str], key: str = "Key", value: str = "Value"
) -> list[dict[str, str]]:
    """``{"k": "v"}`` -> ``[{"Key": "k", "Value": "v"}]``; services disagree on the casing."""
    return [{key: k, value: v} for k, v in sorted(tags.items())]
