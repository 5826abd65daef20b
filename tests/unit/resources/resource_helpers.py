"""Helpers for the resource tests: a Context on moto in-process, or on stubbed clients.

Nothing here sleeps for real: ``FakeClock`` stands in for ``ctx.sleep``/``ctx.clock`` and
records every delay, so retry and polling behaviour is asserted, not waited for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.stub import Stubber

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.naming import Names
from iotpipe.resources.base import Context

ACCOUNT = "123456789012"
SUFFIX = "abc123"
REGION = "us-east-1"


@dataclass
class FakeClock:
    """Monotonic time that only moves when someone sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def make_ctx(
    config: Config | None = None,
    gateway: Gateway | None = None,
    clock: FakeClock | None = None,
    partition: str = "aws",
) -> Context:
    """A Context for ``config`` (defaults) on ``gateway`` (local, moto-patched)."""
    cfg = config or Config()
    clk = clock or FakeClock()
    return Context(
        config=cfg,
        names=Names.of(cfg, SUFFIX, ACCOUNT, partition),
        gateway=gateway or Gateway(region=REGION, local=True),
        sleep=clk.sleep,
        clock=clk.clock,
    )


@dataclass
class Stubbed:
    """A Gateway whose clients are real boto3 clients under botocore Stubbers."""

    gateway: Gateway
    stubbers: dict[str, Stubber]

    def stub(self, service: str, **client_kwargs: Any) -> Stubber:
        client = boto3.client(
            service,
            region_name=REGION,
            aws_access_key_id="x",
            aws_secret_access_key="x",
            **client_kwargs,
        )
        stubber = Stubber(client)
        stubber.activate()
        self.gateway._clients[service] = client
        self.stubbers[service] = stubber
        return stubber

    def without_devices(self) -> None:
        """An IoT client for the function's registry read: the deployment has no things
        (its group does not exist), unless a test stubs ``iot`` itself."""
        iot = boto3.client(
            "iot", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
        )
        stubber = Stubber(iot)
        for _ in range(20):
            stubber.add_client_error(
                "list_things_in_thing_group", "ResourceNotFoundException", http_status_code=404
            )
        stubber.activate()
        self.gateway._clients["iot"] = iot


def add_error(
    stubber: Stubber, method: str, code: str, message: str = "", status: int = 400
) -> None:
    """Queue a service error for ``method`` with any parameters."""
    stubber.add_client_error(
        method, service_error_code=code, service_message=message, http_status_code=status
    )
