"""The emulator's HTTP server keeps connections alive, frames every response, and stops cleanly.

Real sockets against `httpserve.make_server` with small WSGI apps; the client is the
standard library's http.client (what botocore's urllib3 builds on).
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from iotpipe.local import httpserve

App = Callable[[dict[str, Any], Any], Any]


def answer(body: bytes, length: bool = True) -> App:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers = [("Content-Type", "text/plain")]
        if length:
            headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [body]

    return app


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):  # chunked: read to the end, as moto's apps do
        data = stream.read()
    else:
        data = stream.read(int(environ.get("CONTENT_LENGTH") or 0))
    port = str(environ["REMOTE_PORT"]).encode()
    out = port + b" " + data
    start_response("200 OK", [("Content-Length", str(len(out)))])
    return [out]


@pytest.fixture
def serve() -> Iterator[Callable[[App], httpserve.KeepAliveServer]]:
    servers: list[httpserve.KeepAliveServer] = []

    def start(app: App) -> httpserve.KeepAliveServer:
        server = httpserve.make_server("127.0.0.1", 0, app)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.close_connections(timeout=2)
        server.server_close()


def connect(server: httpserve.KeepAliveServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)


def test_one_connection_serves_request_after_request(serve) -> None:
    server = serve(echo)
    conn = connect(server)
    ports = set()
    for n in range(3):
        conn.request("POST", "/", body=f"call {n}".encode())
        reply = conn.getresponse()
        port, _, data = reply.read().partition(b" ")
        assert data == f"call {n}".encode()
        assert reply.getheader("Connection") is None  # werkzeug's own server sends "close"
        ports.add(port)
    assert len(ports) == 1  # the same client socket every time
    assert server.open_connections() == 1


def test_a_body_the_app_did_not_read_is_drained_before_the_next_request(serve) -> None:
    server = serve(answer(b"ignored your body"))
    conn = connect(server)
    conn.request("POST", "/", body=b"x" * 70_000)
    assert conn.getresponse().read() == b"ignored your body"
    conn.request("GET", "/again")
    assert conn.getresponse().read() == b"ignored your body"


def test_more_unread_body_than_it_drains_closes_the_connection(serve) -> None:
    server = serve(answer(b"no"))
    sock = socket.create_connection(server.server_address, timeout=5)
    size = httpserve.DRAIN_MAX + 10
    head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode()
    sock.sendall(head + b"y" * 1000)  # the rest never comes
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    assert reply.startswith(b"HTTP/1.1 200")
    assert b"Connection: close" in reply  # said so, then closed (recv saw the end)
    sock.close()


def test_a_chunked_request_gets_its_answer_and_the_connection_closes(serve) -> None:
    server = serve(echo)
    conn = connect(server)
    conn.request("POST", "/", body=iter([b"ab", b"cd"]), encode_chunked=True)
    reply = conn.getresponse()
    assert reply.getheader("Connection") == "close"
    assert reply.read().endswith(b" abcd")


def test_a_response_without_length_is_chunked_and_the_connection_lives(serve) -> None:
    server = serve(answer(b"streamed", length=False))
    conn = connect(server)
    for _ in range(2):
        conn.request("GET", "/")
        reply = conn.getresponse()
        assert reply.getheader("Transfer-Encoding") == "chunked"
        assert reply.read() == b"streamed"
    assert server.open_connections() == 1


def test_head_gets_headers_only(serve) -> None:
    server = serve(answer(b"body"))
    conn = connect(server)
    conn.request("HEAD", "/")
    reply = conn.getresponse()
    assert reply.getheader("Content-Length") == "4"
    assert reply.read() == b""
    conn.request("GET", "/")  # the connection is still in step
    assert conn.getresponse().read() == b"body"


def test_an_app_error_is_a_500_and_closes_the_connection(serve) -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    server = serve(broken)
    conn = connect(server)
    conn.request("GET", "/")
    reply = conn.getresponse()
    assert reply.status == 500
    assert reply.getheader("Connection") == "close"
    assert b"boom" not in reply.read()  # no traceback or message to the client


def test_closing_ends_idle_connections_and_lets_a_busy_one_finish(serve) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            entered.set()
            release.wait(10)
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = serve(slow)
    idle, busy = connect(server), connect(server)
    idle.request("GET", "/")
    assert idle.getresponse().read() == b"ok"
    busy.request("GET", "/slow")
    assert entered.wait(5)
    closed: list[bool] = []
    closer = threading.Thread(target=lambda: closed.append(server.close_connections(10)))
    closer.start()
    release.set()
    reply = busy.getresponse()
    assert reply.read() == b"ok"  # the request in flight is answered...
    assert reply.getheader("Connection") == "close"  # ...and its connection ends
    closer.join(10)
    assert closed == [True]
    assert server.open_connections() == 0
    idle.request("GET", "/")  # the idle one was shut: no new request is served on it
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        idle.getresponse()


def test_a_request_after_closing_began_is_refused_with_503(serve) -> None:
    server = serve(answer(b"ok"))
    server.closing = True  # as close_connections sets it, before the idle ones are shut
    conn = connect(server)
    conn.request("GET", "/")
    reply = conn.getresponse()
    assert reply.status == 503
    assert b"stopping" in reply.read()
    assert reply.getheader("Connection") == "close"
