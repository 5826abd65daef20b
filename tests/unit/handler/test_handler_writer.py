"""WriteRecords outcomes, the clients' configuration and the pre-serialised body path."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from handler_helpers import (
    NOW,
    FakeTimestream,
    client_error,
    kinesis_record,
    multi_settings,
    reading,
    ts_client,
)

from lambda_handler import decode, records, settings, validate, wire, writer

NOW_MS = round(NOW * 1000)


def request_for(n: int, conf=None, model: str = "multi", **fields) -> records.Request:
    conf = conf or multi_settings()
    readings = [
        validate.evaluate(
            decode.item_from_record(i, kinesis_record(reading(f"dev{i}", i, **fields), i)),
            conf,
            NOW_MS,
        )
        for i in range(n)
    ]
    (request,) = records.plan_requests(readings, model)
    return request


def test_success_writes_everything():
    client = ts_client()
    request = request_for(3)
    with Stubber(client) as stub:
        stub.add_response(
            "write_records",
            {"RecordsIngested": {"Total": 3}},
            request.params("db", "table"),
        )
        assert writer.write(client, "db", "table", request) == writer.WriteResult()


def test_rejected_records_are_permanent_and_the_rest_written():
    client = ts_client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "write_records",
            "RejectedRecordsException",
            "One or more records have been rejected.",
            http_status_code=419,
            modeled_fields={
                "RejectedRecords": [
                    {"RecordIndex": 0, "Reason": "The record timestamp is outside the time range"},
                    {"RecordIndex": 2, "Reason": "Duplicate data", "ExistingVersion": 1},
                    {"RecordIndex": 9, "Reason": "out of this request"},
                ]
            },
        )
        result = writer.write(client, "db", "table", request_for(3))
    assert result.failed == {}
    assert result.rejected == {
        0: "The record timestamp is outside the time range",
        2: "Duplicate data (existing version 1)",
    }


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("InternalServerException", 500),
        ("ServiceUnavailable", 503),
        ("ResourceNotFoundException", 400),
        ("AccessDeniedException", 400),
    ],
)
def test_other_errors_are_transient_for_every_record(code, status):
    client = ts_client()
    with Stubber(client) as stub:
        stub.add_client_error("write_records", code, "nope", http_status_code=status)
        result = writer.write(client, "db", "table", request_for(2))
    assert result.rejected == {}
    assert result.failed == {0: f"{code}: nope", 1: f"{code}: nope"}


def test_network_errors_are_transient():
    fake = FakeTimestream(EndpointConnectionError(endpoint_url="https://x"))
    result = writer.write(fake, "db", "table", request_for(2))
    assert set(result.failed) == {0, 1}
    assert "EndpointConnectionError" in result.failed[0]


def test_a_validation_exception_is_narrowed_to_the_bad_record():
    bad = client_error("ValidationException", "dimension value too long")
    fake = FakeTimestream(
        bad, None, bad, client_error("ThrottlingException", "slow down"), default=None
    )
    result = writer.write(fake, "db", "table", request_for(4))
    assert [len(call["Records"]) for call in fake.calls] == [4, 1, 1, 1, 1]
    assert result.rejected == {1: "ValidationException: dimension value too long"}
    assert result.failed == {2: "ThrottlingException: slow down"}


def test_a_single_invalid_record_is_rejected_without_retrying_it():
    fake = FakeTimestream(client_error("ValidationException", "bad"))
    result = writer.write(fake, "db", "table", request_for(1))
    assert result.rejected == {0: "ValidationException: bad"}
    assert len(fake.calls) == 1


def test_parameter_validation_errors_are_narrowed_too():
    client = boto3.client("timestream-write", endpoint_url="http://x")  # validation on
    net = Wire(client)
    request = request_for(3)
    request.records[1]["Time"] = 5  # not a string: botocore refuses it before sending
    result = writer.write(client, "db", "table", request)
    assert list(result.rejected) == [1]
    assert result.rejected[1].startswith("ParamValidationError")
    assert result.failed == {}
    sent = [json.loads(body)["Records"] for _, _, body in net.sent]
    assert sent == [[request.records[0]], [request.records[2]]]


def test_client_configuration(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = writer.make_client("timestream-write", environ={})
    config = client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}
    assert config.max_pool_connections == writer.MAX_IN_FLIGHT
    assert wire.enabled(client)
    assert not wire.enabled(writer.make_client("sqs", environ={}))


def test_client_side_parameter_validation_is_off():
    client = writer.make_client("sqs", environ={"AWS_ENDPOINT_URL": "http://x"})
    net = Wire(client)
    client.send_message_batch(QueueUrl="http://x/q", Entries=[{"Id": 7, "MessageBody": "b"}])
    assert json.loads(net.sent[0][2])["Entries"] == [{"Id": 7, "MessageBody": "b"}]


def test_endpoint_url_from_the_environment():
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    assert writer.endpoint_url("TIMESTREAM_WRITE", env) == "http://127.0.0.1:5000"
    env["AWS_ENDPOINT_URL_TIMESTREAM_WRITE"] = "http://127.0.0.1:6000"
    assert writer.endpoint_url("TIMESTREAM_WRITE", env) == "http://127.0.0.1:6000"
    assert writer.endpoint_url("SQS", {}) is None


class Wire:
    """Answers every request at the HTTP layer and remembers what was sent."""

    def __init__(self, client, status=200, reply=None):
        self.sent = []
        self.status = status
        self.reply = json.dumps(reply or {"RecordsIngested": {"Total": 1}}).encode()
        client.meta.events.register("before-send", self.send)

    def send(self, request, **_):
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        self.sent.append((target, request.url, request.body))
        raw = type("Raw", (), {"stream": lambda _self, **__: iter([self.reply])})()
        return AWSResponse(request.url, self.status, {}, raw)


def test_an_explicit_endpoint_means_no_endpoint_discovery():
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
    client = writer.make_client("timestream-write", environ=env)
    net = Wire(client)
    writer.write(client, "db", "table", request_for(1))
    assert [(target, url) for target, url, _ in net.sent] == [
        ("Timestream_20181101.WriteRecords", "http://127.0.0.1:4566/")
    ]


@pytest.mark.parametrize("model", ["multi", "single"])
def test_prebuilt_body_is_byte_identical_to_botocores(model):
    conf = settings.from_dict(
        {
            "version": 1,
            "record_model": model,
            "devices": {"dev1": {"location": "Zürich ☃", "shelf": 'A"1\\'}},
        }
    )
    request = request_for(3, conf, model, location="Zürich ☃")
    fast = writer.make_client("timestream-write", environ={"AWS_ENDPOINT_URL": "http://x"})
    slow = boto3.client("timestream-write", endpoint_url="http://x")  # botocore's serializer
    slow_net, fast_net = Wire(slow), Wire(fast)
    slow.write_records(**request.params("db", "table"))
    assert writer.write(fast, "db", "table", request) == writer.WriteResult()
    assert fast_net.sent[0][2] == slow_net.sent[0][2]
    assert json.loads(fast_net.sent[0][2])["Records"] == request.records


def test_prebuilt_body_path_parses_errors_normally():
    client = writer.make_client("timestream-write", environ={"AWS_ENDPOINT_URL": "http://x"})
    reply = {
        "__type": "com.amazonaws.timestream#RejectedRecordsException",
        "message": "rejected",
        "RejectedRecords": [{"RecordIndex": 1, "Reason": "Duplicate data"}],
    }
    Wire(client, status=419, reply=reply)
    result = writer.write(client, "db", "table", request_for(2))
    assert result.rejected == {1: "Duplicate data"}


def test_wire_ignores_calls_without_a_prebuilt_body():
    client = writer.make_client("timestream-write", environ={"AWS_ENDPOINT_URL": "http://x"})
    net = Wire(client)
    params = request_for(1).params("db", "table")
    client.write_records(**params)
    assert json.loads(net.sent[0][2]) == json.loads(json.dumps(params))


def test_clients_and_pool_are_made_once_per_container(monkeypatch):
    made = []
    monkeypatch.setattr(writer, "_clients", {})
    monkeypatch.setattr(writer, "make_client", lambda service: made.append(service) or object())
    first = writer.cached_client("timestream-write")
    assert writer.cached_client("timestream-write") is first
    assert made == ["timestream-write"]
    assert writer.shared_executor() is writer.shared_executor()


def test_inline_executor_reports_exceptions_through_the_future():
    future = writer.InlineExecutor().submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        future.result()
