"""Fixtures for the resource tests (helpers live in resource_helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws
from resource_helpers import REGION, FakeClock, Stubbed

from iotpipe.aws import Gateway


@pytest.fixture(autouse=True)
def _fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach a real account or a configured endpoint from these tests."""
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def moto() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stubbed() -> Iterator[Stubbed]:
    """Remote (not local) gateway: waiters keep AWS pacing, which a stub answers at once."""
    holder = Stubbed(Gateway(region=REGION, local=False), {})
    holder.without_devices()
    yield holder
    for stubber in holder.stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()
