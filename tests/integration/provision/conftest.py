"""Provisioning against moto: in-process (fast) and over HTTP (boto3 exactly as on AWS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto_fixtures import moto_http_server


@pytest.fixture(params=["in-process", "http"])
def aws_endpoint(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: moto patches botocore in this process. A URL: a moto server over HTTP."""
    if request.param == "in-process":  # fake credentials: the autouse fixture in tests/
        from moto import mock_aws

        with mock_aws():
            yield None
    else:
        with moto_http_server() as endpoint:
            yield endpoint


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IOTPIPE_HOME", str(tmp_path / ".iotpipe"))
    return tmp_path / ".iotpipe"
