"""A plain moto server over HTTP (boto3 exactly as on AWS), shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto_fixtures import moto_http_server


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_http_server() as endpoint:
        yield endpoint


@pytest.fixture
def serialized_kinesis(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's ``Shard.put_record`` says it "is not safe for concurrency": two PutRecords
    calls in flight can get the same sequence number and one record overwrites the other.
    Real Kinesis (and the embedded AWS) has no such race, so tests of our concurrent sender
    serialise moto's PutRecords (the server runs in this process) rather than test moto."""
    import threading

    from moto.kinesis.models import KinesisBackend

    lock = threading.Lock()
    original = KinesisBackend.put_records

    def put_records(self: KinesisBackend, *args: object, **kwargs: object) -> object:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(KinesisBackend, "put_records", put_records)
