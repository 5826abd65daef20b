"""Fixtures for the device identity tests: moto in-process, a fake clock, one deployment."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from iotpipe.aws import Gateway
from iotpipe.config import Config
from iotpipe.devices import Scope
from iotpipe.naming import Names
from iotpipe.poll import Clock
from iotpipe.resources.base import Context

ACCOUNT = "123456789012"
REGION = "us-east-1"
SUFFIX = "abc123"


@dataclass
class FakeClock:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ctx(clock: FakeClock) -> Iterator[Context]:
    with mock_aws():
        cfg = Config()
        yield Context(
            config=cfg,
            names=Names.of(cfg, SUFFIX, ACCOUNT),
            gateway=Gateway(region=REGION, local=True),
            sleep=clock.sleep,
            clock=clock.clock,
        )


@pytest.fixture
def iot(ctx: Context) -> Any:
    return ctx.client("iot")


@pytest.fixture
def scope(ctx: Context, clock: FakeClock) -> Scope:
    return Scope(ctx.names, ctx.config.iot_rule.topic, ctx.tags, Clock(clock.sleep, clock.clock))


def raw_iot() -> Any:
    return boto3.client("iot", region_name=REGION)
