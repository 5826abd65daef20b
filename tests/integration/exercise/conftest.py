"""A plain moto server over HTTP (boto3 exactly as on AWS), shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(var, value)


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
