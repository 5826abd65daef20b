"""The checks in front of moto: own Host, no foreign browser Origin, token, no CORS."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from iotpipe.local import guard
from iotpipe.local.guard import Refusal

PORT = 4566
TOKEN = "t0ken"


def environ(path: str = "/_iotpipe/health", **headers: str) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "RAW_URI": path,
        "HTTP_HOST": f"127.0.0.1:{PORT}",
        "wsgi.input": io.BytesIO(b""),
    }
    env.update(headers)  # WSGI keys: HTTP_ORIGIN, CONTENT_TYPE...
    return env


class Recorder:
    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        self.status, self.headers = status, headers


def moto_like(env: dict[str, Any], start_response: Any) -> list[bytes]:
    """Stands in for moto: answers 200 with a reflected CORS header, as flask_cors does."""
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Access-Control-Allow-Origin", env.get("HTTP_ORIGIN", "*")),
        ],
    )
    return [b"served"]


def call(env: dict[str, Any]) -> tuple[Recorder, bytes]:
    rec = Recorder()
    body = b"".join(guard.guarded(moto_like, lambda: PORT, TOKEN)(env, rec))
    return rec, body


@pytest.mark.parametrize("host", [f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"LOCALHOST:{PORT}"])
def test_own_hosts_pass(host):
    guard.check_browser(environ(HTTP_HOST=host), PORT)


@pytest.mark.parametrize(
    "host", ["evil.example", f"evil.example:{PORT}", "127.0.0.1", f"127.0.0.1:{PORT + 1}", ""]
)
def test_foreign_hosts_are_refused(host):
    with pytest.raises(Refusal, match="DNS rebinding"):
        guard.check_browser(environ(HTTP_HOST=host), PORT)


@pytest.mark.parametrize("origin", [f"http://127.0.0.1:{PORT}", f"http://localhost:{PORT}"])
def test_own_origin_passes(origin):
    guard.check_browser(environ(HTTP_ORIGIN=origin), PORT)


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "null", f"https://127.0.0.1:{PORT}", f"http://127.0.0.1:{PORT + 1}"],
)
def test_foreign_origin_is_refused(origin):
    with pytest.raises(Refusal, match="web pages are refused"):
        guard.check_browser(environ(HTTP_ORIGIN=origin), PORT)


@pytest.mark.parametrize(
    ("site", "ok"),
    [("same-origin", True), ("none", True), ("cross-site", False), ("same-site", False)],
)
def test_sec_fetch_site(site, ok):
    env = environ(HTTP_SEC_FETCH_SITE=site)
    if ok:
        guard.check_browser(env, PORT)
    else:
        with pytest.raises(Refusal):
            guard.check_browser(env, PORT)


@pytest.mark.parametrize(
    ("path", "admin"),
    [
        ("/moto-api/reset", True),
        ("/moto-api/", True),
        ("/moto-api/data.json", True),
        ("/_iotpipe/status", True),
        ("/_iotpipe/anything", True),
        ("/_iotpipe/health", False),
        ("/", False),
        ("/2015-03-31/functions/", False),
    ],
)
def test_admin_routes(path, admin):
    assert guard.is_admin(path) is admin


def test_reset_needs_the_token_even_from_our_own_origin():
    env = environ("/moto-api/reset", HTTP_ORIGIN=f"http://127.0.0.1:{PORT}")
    rec, body = call(env)
    assert rec.status.startswith("403") and b"X-Iotpipe-Token" in body
    env["HTTP_X_IOTPIPE_TOKEN"] = "wrong"
    assert call(env)[0].status.startswith("403")
    env["HTTP_X_IOTPIPE_TOKEN"] = TOKEN
    rec, body = call(env)
    assert rec.status == "200 OK" and body == b"served"


def test_foreign_origin_is_refused_before_the_token_is_looked_at():
    env = environ("/moto-api/reset", HTTP_ORIGIN="http://evil.example", HTTP_X_IOTPIPE_TOKEN=TOKEN)
    rec, body = call(env)
    assert rec.status.startswith("403") and json.loads(body)["__type"] == "AccessDeniedException"


def test_health_is_open_but_host_checked():
    assert call(environ())[0].status == "200 OK"
    assert call(environ(HTTP_HOST="rebound.example"))[0].status.startswith("403")


def test_no_cors_header_ever_leaves():
    env = environ(
        "/_iotpipe/status", HTTP_ORIGIN=f"http://127.0.0.1:{PORT}", HTTP_X_IOTPIPE_TOKEN=TOKEN
    )
    rec, _ = call(env)
    assert rec.status == "200 OK"
    assert not [k for k, _ in rec.headers if k.lower().startswith("access-control-")]


def test_unsigned_api_call_is_refused_as_aws_would():
    rec, body = call(environ("/"))
    assert rec.status.startswith("403")
    assert json.loads(body)["__type"] == "MissingAuthenticationTokenException"
    assert ("x-amzn-ErrorType", "MissingAuthenticationTokenException") in rec.headers


def test_query_protocol_callers_get_xml():
    env = environ("/", CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8")
    _, body = call(env)
    assert (
        body.startswith(b"<ErrorResponse>") and b"<Code>MissingAuthenticationToken</Code>" in body
    )


def test_the_body_is_read_once_and_put_back():
    env = environ("/", CONTENT_LENGTH="5")
    env["wsgi.input"] = io.BytesIO(b"hello and more")
    assert guard.read_body(env) == b"hello"
    assert env["wsgi.input"].read() == b"hello" and env["CONTENT_LENGTH"] == "5"
