"""The emulator's SigV4 check agrees with botocore's signer, and refuses what AWS refuses."""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from iotpipe.local import sigv4
from iotpipe.local.sigv4 import SignatureError

HOST = "127.0.0.1:4566"


def to_environ(request: Any) -> dict[str, Any]:
    """A WSGI environ as werkzeug's server builds it from what botocore sends."""
    prepared = request.prepare()
    body = prepared.body or b""
    parts = urlsplit(prepared.url)
    raw = parts.path + (f"?{parts.query}" if parts.query else "")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": prepared.method,
        "PATH_INFO": unquote(parts.path),
        "QUERY_STRING": parts.query,
        "RAW_URI": raw,
        "REQUEST_URI": raw,
        "HTTP_HOST": parts.netloc,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in prepared.headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"] = value
    return environ


def signed(
    path: str = "/",
    body: bytes = b'{"StreamName": "s"}',
    method: str = "POST",
    service: str = "kinesis",
    signer: type = SigV4Auth,
    key: str = "testing",
    secret: str = "testing",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    request = AWSRequest(
        method=method,
        url=f"http://{HOST}{path}",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", **(headers or {})},
    )
    if signer in (SigV4QueryAuth, S3SigV4QueryAuth):
        signer(Credentials(key, secret), service, "us-east-1", expires=60).add_auth(request)
    else:
        signer(Credentials(key, secret), service, "us-east-1").add_auth(request)
    return to_environ(request)


@pytest.mark.parametrize(
    ("path", "service", "signer", "method"),
    [
        ("/", "kinesis", SigV4Auth, "POST"),
        (
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/invocations",
            "lambda",
            SigV4Auth,
            "POST",
        ),
        ("/topics/iot%2Fsensors%2Fs1%2Fdata?qos=1", "iotdata", SigV4Auth, "POST"),
        ("/2015-03-31/functions/?MaxItems=50&Marker=a%20b", "lambda", SigV4Auth, "GET"),
        ("/bucket/a%20key/with%2Bplus", "s3", S3SigV4Auth, "PUT"),
        ("/?Action=ListStreams&Version=2013-12-02", "kinesis", SigV4QueryAuth, "GET"),
        ("/bucket/key", "s3", S3SigV4QueryAuth, "GET"),
    ],
)
def test_what_botocore_signs_is_accepted(path, service, signer, method):
    environ = signed(path=path, service=service, signer=signer, method=method)
    got = sigv4.verify(environ, environ["wsgi.input"].read())
    assert got.access_key == "testing" and got.service == service


def test_session_token_and_extra_signed_headers_are_accepted():
    environ = signed(headers={"X-Amz-Security-Token": "testing", "X-Amz-Target": "Kinesis.X"})
    assert "x-amz-security-token" in sigv4.verify(environ, b'{"StreamName": "s"}').signed_headers


def test_changed_body_is_refused():
    environ = signed()
    with pytest.raises(SignatureError) as e:
        sigv4.verify(environ, b'{"StreamName": "other"}')
    assert e.value.code == "InvalidSignatureException"


def test_changed_signed_header_is_refused():
    environ = signed(headers={"X-Amz-Target": "Kinesis_20131202.ListStreams"})
    environ["HTTP_X_AMZ_TARGET"] = "Kinesis_20131202.DeleteStream"
    with pytest.raises(SignatureError, match="does not match"):
        sigv4.verify(environ, b'{"StreamName": "s"}')


def test_wrong_secret_is_refused():
    with pytest.raises(SignatureError) as e:
        sigv4.verify(signed(secret="not-the-local-one"), b'{"StreamName": "s"}')
    assert e.value.code == "InvalidSignatureException"


def test_bogus_signature_is_refused():
    environ = signed()
    auth = environ["HTTP_AUTHORIZATION"]
    environ["HTTP_AUTHORIZATION"] = auth[: auth.index("Signature=")] + "Signature=" + "0" * 64
    with pytest.raises(SignatureError, match="does not match"):
        sigv4.verify(environ, b'{"StreamName": "s"}')


def test_unknown_access_key_is_refused_naming_the_local_credentials():
    with pytest.raises(SignatureError) as e:
        sigv4.verify(signed(key="AKIAREALKEY", secret="x"), b'{"StreamName": "s"}')
    assert e.value.code == "UnrecognizedClientException" and "'testing'" in e.value.message


def test_unsigned_request_is_refused():
    environ = signed()
    del environ["HTTP_AUTHORIZATION"]
    with pytest.raises(SignatureError) as e:
        sigv4.verify(environ, b'{"StreamName": "s"}')
    assert e.value.code == "MissingAuthenticationTokenException"


def test_other_signing_methods_are_refused_clearly():
    environ = signed()
    environ["HTTP_AUTHORIZATION"] = "AWS testing:c2lnbmF0dXJl"
    with pytest.raises(SignatureError, match="unsupported signing method 'AWS'"):
        sigv4.verify(environ, b"")


def test_a_signed_header_missing_from_the_request_is_named():
    environ = signed(headers={"X-Amz-Target": "Kinesis_20131202.ListStreams"})
    del environ["HTTP_X_AMZ_TARGET"]
    with pytest.raises(SignatureError, match="'x-amz-target' is not in the request"):
        sigv4.verify(environ, b'{"StreamName": "s"}')


def test_presigned_url_with_changed_query_is_refused():
    environ = signed(path="/?Action=ListStreams", signer=SigV4QueryAuth, method="GET")
    environ["QUERY_STRING"] = environ["QUERY_STRING"].replace("ListStreams", "DeleteStream")
    with pytest.raises(SignatureError, match="does not match"):
        sigv4.verify(environ, b"")


def test_keys_the_emulator_issued_are_known(monkeypatch):
    from moto import mock_aws

    with mock_aws():
        import boto3

        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName="u")
        key = iam.create_access_key(UserName="u")["AccessKey"]
        assert sigv4.secret_for(key["AccessKeyId"]) == key["SecretAccessKey"]
        assert sigv4.secret_for("AKIANOTISSUED0000000") is None
    assert sigv4.secret_for("testing") == "testing"
