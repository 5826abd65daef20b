"""Nobody but the user's own clients can reach the embedded AWS (issue 8, item 5).

Attacks as a web page or another local process would make them: a rebound Host, a
foreign Origin, a reset without the token, a bogus signature. Plus Kinesis' 1 MiB limit.
"""

from __future__ import annotations

import http.client
import json
import os
import stat
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import pytest

from iotpipe.local import lifecycle

pytestmark = pytest.mark.integration


def raw(endpoint: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Any:
    """One HTTP request with exactly these headers (Host included): (status, headers, body)."""
    parts = urlsplit(endpoint)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in {"Host": parts.netloc, **headers}.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """An emulator of this module's own: resetting it touches nobody else's resources."""
    home = tmp_path_factory.mktemp("own-emulator")
    info = lifecycle.start(home)
    yield info, home
    lifecycle.stop(home)


def _clients(endpoint: str, **kw: str) -> dict[str, Any]:
    import boto3

    args = {
        "endpoint_url": endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        **kw,
    }
    return {s: boto3.client(s, **args) for s in ("kinesis", "sqs")}


def test_local_json_is_private_and_holds_the_token(own):
    _info, home = own
    path = home / "local.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    token = json.loads(path.read_text())["token"]
    assert len(token) >= 32 and lifecycle.admin_token(home) == token
    assert token not in (home / "local.log").read_text()


def test_reset_from_a_web_page_or_without_token_changes_nothing(own):
    info, home = own
    c = _clients(info.endpoint)
    c["kinesis"].create_stream(StreamName="keep", ShardCount=1)
    token = lifecycle.admin_token(home)
    attempts = [
        {"Origin": "http://evil.example"},
        {"Origin": "http://evil.example", "X-Iotpipe-Token": token},
        {"Host": "evil.example", "X-Iotpipe-Token": token},
        {"Sec-Fetch-Site": "cross-site", "X-Iotpipe-Token": token},
        {},
        {"X-Iotpipe-Token": "guessed"},
    ]
    for headers in attempts:
        status, _, body = raw(info.endpoint, "POST", "/moto-api/reset", headers)
        assert status == 403, headers
        assert json.loads(body)["message"], headers
    assert c["kinesis"].list_streams()["StreamNames"] == ["keep"]
    with urllib.request.urlopen(lifecycle.admin_request(home, "/moto-api/reset", "POST")) as r:
        assert r.status == 200
    assert c["kinesis"].list_streams()["StreamNames"] == []


def test_moto_dashboard_and_status_need_the_token(own):
    info, home = own
    for path in ("/moto-api/", "/moto-api/data.json", "/_iotpipe/status"):
        assert raw(info.endpoint, "GET", path, {})[0] == 403, path
        with urllib.request.urlopen(lifecycle.admin_request(home, path)) as r:
            assert r.status == 200, path
    assert lifecycle.status(home)["pid"] == info.pid  # `iotpipe local status` still works


@pytest.mark.parametrize("host", ["evil.example", "attacker.example:{port}", "0.0.0.0:{port}"])
def test_foreign_host_is_refused(local_aws, host):
    port = urlsplit(local_aws.endpoint).port
    status, _, body = raw(
        local_aws.endpoint, "GET", "/_iotpipe/health", {"Host": host.format(port=port)}
    )
    assert status == 403 and "DNS rebinding" in json.loads(body)["message"]


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}"])
def test_own_hosts_are_served(local_aws, host):
    port = urlsplit(local_aws.endpoint).port
    status, _, body = raw(
        local_aws.endpoint, "GET", "/_iotpipe/health", {"Host": host.format(port=port)}
    )
    assert status == 200 and json.loads(body) == {"ok": True}


def test_browser_origin_other_than_ours_is_refused_ours_and_none_served(local_aws):
    port = urlsplit(local_aws.endpoint).port
    for origin, expected in [
        ("http://evil.example", 403),
        ("null", 403),
        (f"http://127.0.0.1:{port}", 200),
        (f"http://localhost:{port}", 200),
        (None, 200),
    ]:
        headers = {"Origin": origin} if origin else {}
        status, resp_headers, _ = raw(local_aws.endpoint, "GET", "/_iotpipe/health", headers)
        assert status == expected, origin
        assert not [h for h in resp_headers if h.startswith("access-control-")], origin


def test_no_cors_header_on_aws_calls_or_preflights(local_aws):
    """moto's flask_cors reflected any Origin; no Access-Control-* header leaves now."""
    port = urlsplit(local_aws.endpoint).port
    evil = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    status, headers, _ = raw(local_aws.endpoint, "OPTIONS", "/", evil)
    assert status == 403 and "access-control-allow-origin" not in headers
    seen: list[dict[str, str]] = []
    k = local_aws.client("kinesis")
    k.meta.events.register(
        "before-sign.kinesis.*",
        lambda request, **_: request.headers.add_header("Origin", f"http://127.0.0.1:{port}"),
    )
    k.meta.events.register(
        "after-call.kinesis.*", lambda http_response, **_: seen.append(dict(http_response.headers))
    )
    k.list_streams()
    assert seen and not [h for h in seen[0] if h.lower().startswith("access-control-")]


def test_bad_signature_wrong_key_and_unsigned_calls_are_refused(local_aws):
    from botocore.exceptions import ClientError

    cases = [
        ({"aws_secret_access_key": "not-testing"}, "InvalidSignatureException"),
        ({"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE"}, "UnrecognizedClientException"),
    ]
    name = local_aws.name("sig")
    for kw, code in cases:
        k = _clients(local_aws.endpoint, **kw)["kinesis"]
        with pytest.raises(ClientError) as e:
            k.create_stream(StreamName=name, ShardCount=1)
        assert e.value.response["Error"]["Code"] == code
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    body = json.dumps({"StreamName": name, "ShardCount": 1}).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "Kinesis_20131202.CreateStream",
    }
    status, _, text = raw(local_aws.endpoint, "POST", "/", headers, body)
    assert status == 403 and json.loads(text)["__type"] == "MissingAuthenticationTokenException"
    forged = {
        **headers,
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature="
        + "0" * 64,
        "X-Amz-Date": "20260101T000000Z",
    }
    assert raw(local_aws.endpoint, "POST", "/", forged, body)[0] == 403
    assert name not in local_aws.client("kinesis").list_streams()["StreamNames"]


def test_the_function_credentials_and_a_key_iam_issued_are_accepted(local_aws):
    import boto3

    iam = local_aws.client("iam")
    user = local_aws.name("user")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    sts = boto3.client(
        "sts",
        endpoint_url=local_aws.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{user}")
    with_token = local_aws.client("sqs", aws_session_token="testing")  # as the functions sign
    assert with_token.list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200


# -- Kinesis' record size limit -------------------------------------------------------------
MIB = 1024 * 1024


def test_put_record_over_1_mib_is_refused_exactly_1_mib_accepted(local_aws):
    from botocore.exceptions import ClientError

    k = local_aws.client("kinesis")
    stream = local_aws.name("big")
    k.create_stream(StreamName=stream, ShardCount=1)
    key = "sensor001"
    with pytest.raises(ClientError) as e:
        k.put_record(StreamName=stream, PartitionKey=key, Data=b"x" * (MIB - len(key) + 1))
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "1048576" in e.value.response["Error"]["Message"]
    k.put_record(StreamName=stream, PartitionKey=key, Data=b"x" * (MIB - len(key)))
    it = k.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = k.get_records(ShardIterator=it)["Records"]
    assert [len(r["Data"]) for r in records] == [MIB - len(key)]


def test_put_records_with_one_oversized_entry_is_refused_whole(local_aws):
    from botocore.exceptions import ClientError

    k = local_aws.client("kinesis")
    stream = local_aws.name("bigs")
    k.create_stream(StreamName=stream, ShardCount=1)
    small = {"PartitionKey": "k", "Data": b"{}"}
    with pytest.raises(ClientError) as e:
        k.put_records(StreamName=stream, Records=[small, {"PartitionKey": "k", "Data": b"x" * MIB}])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    assert "records.2" in e.value.response["Error"]["Message"]
    it = k.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert k.get_records(ShardIterator=it)["Records"] == []  # nothing of it was stored
    out = k.put_records(
        StreamName=stream, Records=[small, {"PartitionKey": "k", "Data": b"x" * (MIB - 1)}]
    )
    assert out["FailedRecordCount"] == 0


def test_reading_with_an_http_error_does_not_leak_the_token(local_aws):
    try:
        urllib.request.urlopen(local_aws.endpoint + "/_iotpipe/status", timeout=5)
    except urllib.error.HTTPError as e:
        assert lifecycle.admin_token(local_aws.home) not in e.read().decode()
    else:
        pytest.fail("status answered without the token")


def test_queue_counts_through_the_api_stay_exact(local_aws):
    """SendMessage no longer computes the counts; GetQueueAttributes still reports them."""
    sqs = local_aws.client("sqs")
    url = sqs.create_queue(QueueName=local_aws.name("depth"))["QueueUrl"]
    for i in range(0, 30, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(i, i + 10)],
        )
    sqs.send_message(QueueUrl=url, MessageBody="late", DelaySeconds=60)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=5, VisibilityTimeout=60)
    assert len(got["Messages"]) == 5
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    counts = [attrs[f"ApproximateNumberOfMessages{s}"] for s in ("", "NotVisible", "Delayed")]
    assert counts == ["25", "5", "1"]
    one = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert one["Attributes"] == {"ApproximateNumberOfMessages": "25"}
