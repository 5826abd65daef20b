"""Shared fixtures: the embedded AWS, started once per session as the product starts it.

`local_aws` runs ``iotpipe.local`` as a detached subprocess on a free port (the real
path: `lifecycle.start`), with IOTPIPE_HOME in a temporary directory, and stops it when
the session ends, whether the tests passed or not. Tests share it, so they use their own
resource names (`local_aws.name("stream")`).
`local_env` points boto3 (and CLI subprocesses) at it through the environment, for one test.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real account: fake credentials, no profiles or config files."""
    for key, value in _FAKE_AWS.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@dataclass
class LocalAws:
    """A running embedded AWS: where it is, and boto3 clients bound to it."""

    endpoint: str
    home: Path
    pid: int
    region: str = "us-east-1"
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def client(self, service: str, **kwargs: Any) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=kwargs.pop("region_name", self.region),
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )

    def name(self, prefix: str) -> str:
        """A resource name unique within the session."""
        return f"{prefix}{os.getpid()}x{next(self._ids)}"

    def status(self) -> dict[str, Any]:
        from iotpipe.local.lifecycle import status

        data = status(self.home)
        assert data is not None, "the embedded AWS is not running"
        return data


@pytest.fixture(scope="session")
def local_aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    from iotpipe.local import lifecycle

    home = tmp_path_factory.mktemp("iotpipe-home")
    info = lifecycle.start(home, port=0)
    try:
        yield LocalAws(endpoint=info.endpoint, home=home, pid=info.pid)
    finally:
        lifecycle.stop(home)


@pytest.fixture
def local_env(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> LocalAws:
    """This test's environment points at the shared emulator (AWS_ENDPOINT_URL, IOTPIPE_HOME)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_aws.endpoint)
    monkeypatch.setenv("IOTPIPE_HOME", str(local_aws.home))
    return local_aws
