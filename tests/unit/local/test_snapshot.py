"""The control-plane snapshot (iotpipe.local.snapshot) and the request classifier that
decides when it is written (iotpipe.local.requestkind), in process."""

from __future__ import annotations

import io
import json
import pickle
import threading
import weakref
from collections import defaultdict
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from iotpipe.local import requestkind, snapshot
from iotpipe.local.durable import PERSISTENCE, StateError
from iotpipe.local.requestkind import Kind

REGION = "us-east-1"


class Holder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rlock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.event = threading.Event()
        self.event.set()
        self.sem = threading.BoundedSemaphore(3)
        self.weak: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
        self.aliases: defaultdict[str, dict[str, int]] = defaultdict(lambda: {})
        self.aliases["f"]["a"] = 1


def test_locks_and_closures_pickle_as_fresh_equivalents():
    h = Holder()
    keep = Holder()
    h.weak["k"] = keep
    h.keep = keep  # type: ignore[attr-defined]
    back = pickle.loads(snapshot.dumps(h))
    assert back.lock.acquire(blocking=False)  # a fresh, unlocked lock
    assert back.cond._lock is back.lock  # the condition shares it, as before
    assert back.event.is_set() and back.sem._value == 3
    assert back.weak["k"] is back.keep
    assert back.aliases["f"] == {"a": 1} and back.aliases["new"] == {}
    assert back.aliases["other"] is not back.aliases["new"]  # a fresh default each time


class Bulky:
    def __init__(self, name: str) -> None:
        self.name = name
        self.rows = list(range(1000))


def reattach(name: str) -> Bulky:
    return Bulky(name)


class BulkierStill(Bulky):
    pass


def test_registered_reducer_applies_to_the_class_and_its_subclasses():
    snapshot.register_reducer(Bulky, lambda b: (reattach, (b.name,)))
    small = snapshot.dumps([Bulky("a"), BulkierStill("b")])
    assert len(small) < 300  # references, not the 2,000 rows
    back = pickle.loads(small)
    assert [b.name for b in back] == ["a", "b"] and len(back[0].rows) == 1000


def test_an_unpicklable_attribute_is_named_by_its_path():
    class Local:  # a local class cannot pickle
        pass

    holder = Holder()
    holder.deep = {"x": [1, Local()]}  # type: ignore[attr-defined]
    with pytest.raises(snapshot.SnapshotError, match=r"\.deep\['x'\]\[1\]"):
        snapshot.encode({"backends": holder})


def write(tmp_path: Path, data: bytes) -> Path:
    where = tmp_path / "data" / "control"
    where.mkdir(parents=True)
    (where / snapshot.FILE).write_bytes(data)
    return where / snapshot.FILE


def test_a_truncated_snapshot_is_a_clear_state_error(tmp_path):
    data = snapshot.encode({"backends": []})
    path = write(tmp_path, data[:-3])
    with pytest.raises(StateError, match="truncated or corrupt") as err:
        snapshot.decode(path.read_bytes(), path)
    assert "iotpipe local reset" in str(err.value) and "--ephemeral" in str(err.value)


def test_a_flipped_byte_and_garbage_are_state_errors(tmp_path):
    data = bytearray(snapshot.encode({"backends": [1, 2, 3]}))
    data[-2] ^= 0xFF
    path = write(tmp_path, bytes(data))
    with pytest.raises(StateError, match="checksum"):
        snapshot.decode(path.read_bytes(), path)
    with pytest.raises(StateError, match="not a snapshot"):
        snapshot.decode(b"\x80\x05garbage", path)


def test_another_moto_version_is_refused_before_unpickling(tmp_path):
    data = snapshot.encode({"backends": []})
    head, _, _ = data[len(snapshot.MAGIC) :].partition(b"\n")
    header = {**json.loads(head), "moto": "0.0.1"}
    path = write(tmp_path, snapshot.MAGIC + json.dumps(header).encode() + b"\n" + b"junk")
    with pytest.raises(StateError, match=r"moto 0\.0\.1") as err:
        snapshot.decode(path.read_bytes(), path)
    assert "iotpipe local reset" in str(err.value)


def test_control_is_the_first_part():
    assert PERSISTENCE.parts[0].name == "control"


@mock_aws
def test_moto_backends_round_trip_through_the_part(tmp_path):
    """Resources and a function's code survive save -> moto forgets -> open."""
    from moto.core.base_backend import BackendDict

    sqs = boto3.client("sqs", region_name=REGION)
    sqs.create_queue(QueueName="kept")
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = _zip(b"def h(e, c):\n    return 1\n")
    lam = boto3.client("lambda", region_name=REGION)
    lam.create_function(
        FunctionName="f", Runtime="python3.12", Role=role, Handler="h.h", Code={"ZipFile": code}
    )
    part = snapshot.ControlSnapshot()
    part.open(tmp_path)
    part.after_mutation()
    assert part.writes == 1
    part.after_mutation()  # a second change: a second write (nothing coalesces it)
    assert part.writes == 2
    part.close()
    BackendDict.reset()
    assert sqs.list_queues().get("QueueUrls") is None

    again = snapshot.ControlSnapshot()
    again.open(tmp_path)
    try:
        assert sqs.list_queues()["QueueUrls"][0].endswith("/kept")
        assert iam.get_role(RoleName="r")["Role"]["Arn"] == role
        from moto.awslambda.models import lambda_backends

        fn = lambda_backends["123456789012"][REGION].get_function("f")
        assert fn.code_bytes == code  # the zip the worker unpacks
    finally:
        again.close()


def _zip(source: bytes) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("h.py", source)
    return buf.getvalue()


def test_a_failed_write_keeps_the_previous_snapshot(tmp_path, monkeypatch):
    part = snapshot.ControlSnapshot()
    part.open(tmp_path)
    part.save()
    before = (tmp_path / snapshot.FILE).read_bytes()

    def crash(path: Path, data: bytes) -> None:
        (path.parent / f".{path.name}.tmp").write_bytes(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshot, "write_durably", crash)
    with pytest.raises(OSError):
        part.after_mutation()
    assert (tmp_path / snapshot.FILE).read_bytes() == before
    assert "No space" in part.stats()["last_error"]
    monkeypatch.undo()
    part.close()


# -- which requests write a snapshot ---------------------------------------------------
def env(
    service: str, method: str = "POST", path: str = "/", target: str = "", body: bytes = b""
) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "HTTP_AUTHORIZATION": (
            f"AWS4-HMAC-SHA256 Credential=testing/20261202/{REGION}/{service}/aws4_request, "
            "SignedHeaders=host, Signature=abc"
        ),
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    if body:
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded; charset=utf-8"
    return environ


@pytest.mark.parametrize(
    ("environ", "kind"),
    [
        (env("kinesis", target="Kinesis_20131202.CreateStream"), Kind.CONTROL),
        (env("kinesis", target="Kinesis_20131202.PutRecords"), Kind.DATA),
        (env("kinesis", target="Kinesis_20131202.GetRecords"), Kind.READ),
        (env("kinesis", target="Kinesis_20131202.DescribeStreamSummary"), Kind.READ),
        (env("timestream", target="Timestream_20181101.WriteRecords"), Kind.DATA),
        (env("timestream", target="Timestream_20181101.CreateTable"), Kind.CONTROL),
        (env("sqs", target="AmazonSQS.SendMessage"), Kind.DATA),
        (env("sqs", target="AmazonSQS.SetQueueAttributes"), Kind.CONTROL),
        (env("logs", target="Logs_20140328.PutLogEvents"), Kind.DATA),
        (env("logs", target="Logs_20140328.PutRetentionPolicy"), Kind.CONTROL),
        (env("lambda", path="/2015-03-31/functions/f/invocations"), Kind.DATA),
        (env("lambda", path="/2015-03-31/functions"), Kind.CONTROL),
        (env("lambda", method="DELETE", path="/2015-03-31/event-source-mappings/u"), Kind.CONTROL),
        (env("lambda", method="GET", path="/2015-03-31/functions/f"), Kind.READ),
        (env("iot", path="/rules/r"), Kind.CONTROL),
        (env("iotdata", path="/topics/t"), Kind.DATA),
        (env("s3", method="PUT", path="/bucket"), Kind.CONTROL),
        (env("s3", method="PUT", path="/bucket/key/part"), Kind.DATA),
        (env("athena", target="AmazonAthena.StartQueryExecution"), Kind.DATA),
        (env("athena", target="AmazonAthena.CreateWorkGroup"), Kind.CONTROL),
        (env("monitoring", path="/service/X/operation/PutMetricData"), Kind.DATA),
        (env("sts", body=b"Action=AssumeRole&Version=2011-06-15"), Kind.READ),
        ({"REQUEST_METHOD": "POST", "PATH_INFO": "/moto-api/x"}, Kind.READ),  # unsigned
    ],
)
def test_classify(environ, kind):
    assert requestkind.classify(environ) is kind


def test_a_query_protocol_body_is_read_for_its_action_and_given_back():
    body = b"Action=CreateRole&RoleName=r&Version=2010-05-08"
    environ = env("iam", body=body)
    assert requestkind.classify(environ) is Kind.CONTROL
    assert environ["wsgi.input"].read() == body
    assert requestkind.classify(env("iam", body=b"Action=ListRoles")) is Kind.READ
