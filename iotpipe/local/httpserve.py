"""The emulator's HTTP server: werkzeug's, with HTTP/1.1 keep-alive and a clean stop.

Why: werkzeug's development server closes every connection after one response
(``Connection: close``) and then waits up to 10 ms for stray body bytes. So every AWS
call paid a TCP connect, a new server thread and a socket teardown on both sides, and
the data plane is thousands of calls a second (a function worker's WriteRecords, a
device's PutRecords): ~12 % of a function worker's time went to connecting. Here a
connection serves request after request, as AWS's endpoints do; botocore and urllib3
reuse it.

Keep-alive needs what werkzeug's comment says it lacks: the next request line must start
exactly where this request's body ends. The body is read through a ``LimitedStream`` of
its Content-Length; whatever the application left unread (up to `DRAIN_MAX`) is read and
dropped after the response, and a connection that cannot be drained that way (a chunked
body, more left than `DRAIN_MAX`, an application error after the headers went out) is
closed, as before. An idle connection is closed after `IDLE_S`.

Stopping: `KeepAliveServer.close_connections` refuses further requests on open
connections (``503`` with ``Connection: close``), ends the idle ones and waits for the
busy ones, so nothing is answered after the stores closed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

IDLE_S = 60.0  # an idle keep-alive connection is closed after this
DRAIN_MAX = 1 << 20  # unread body bytes drained to keep a connection; more: close it
_NO_BODY = frozenset({204, 304})


class KeepAliveHandler(WSGIRequestHandler):
    """One connection: requests answered in turn until either side closes it."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_S  # socket timeout: a silent client is dropped (werkzeug logs nothing)
    disable_nagle_algorithm = True  # head and body are two writes: no 40 ms delayed-ACK stall
    server: KeepAliveServer

    def setup(self) -> None:
        super().setup()
        self.busy = False
        self.body: LimitedStream | None = None
        self.server.track(self, True)

    def finish(self) -> None:
        self.server.track(self, False)
        super().finish()

    def run_wsgi(self) -> None:
        self.busy = True
        try:
            if self.server.closing:
                self._refuse()
                return
            if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.environ = environ = self.make_environ()
            self.body = _limit(environ)
            self._respond(environ)
            self._drain(self.body)
            if self.server.closing:
                self.close_connection = True
        finally:
            self.busy = False

    def _respond(self, environ: dict[str, Any]) -> None:
        reply = _Reply(self, environ)
        try:
            chunks = self.server.app(environ, reply.start_response)
            try:
                reply.send(chunks)
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # as werkzeug: a 500 if nothing went out, else close
            self.server.log("error", f"Error on request {self.command} {self.path}: {exc!r}")
            self.close_connection = True
            if not reply.sent:
                reply.error()

    def must_close(self) -> bool:
        """Decided as the headers go out: a chunked body, more left unread than we would
        drain, or a stop in progress."""
        body = self.body
        return (
            self.close_connection
            or self.server.closing
            or body is None
            or body.limit - body.tell() > DRAIN_MAX
        )

    def _drain(self, body: LimitedStream | None) -> None:
        """Leave the stream at the next request line, or mark the connection for closing."""
        if body is None:
            self.close_connection = True
            return
        left = body.limit - body.tell()
        if left <= 0:
            return
        if left > DRAIN_MAX:
            self.close_connection = True
            return
        try:
            body.exhaust()
        except Exception:  # the client went away mid-body
            self.close_connection = True

    def _refuse(self) -> None:
        data = b'{"__type": "ServiceUnavailable", "message": "the embedded AWS is stopping"}'
        self.close_connection = True
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def _limit(environ: dict[str, Any]) -> LimitedStream | None:
    """Bound ``wsgi.input`` to this request's body; None when it cannot be (chunked)."""
    if environ.get("wsgi.input_terminated"):
        return None
    try:
        length = max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return None
    body = LimitedStream(environ["wsgi.input"], length)
    environ["wsgi.input"] = body
    return body


class _Reply:
    """start_response and the writes of one response (framed, so the connection lives)."""

    def __init__(self, handler: KeepAliveHandler, environ: dict[str, Any]) -> None:
        self.handler = handler
        self.head = environ["REQUEST_METHOD"] == "HEAD"
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.sent = False
        self.chunked = False

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None):  # type: ignore[no-untyped-def]
        if exc_info and self.sent:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status, self.headers = status, headers
        return self.write

    def send(self, chunks: Iterable[bytes]) -> None:
        for data in chunks:
            self.write(data)
        if not self.sent:
            self.write(b"")
        if self.chunked:
            self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()

    def write(self, data: bytes) -> None:
        h = self.handler
        if not self.sent:
            self._send_head()
        if data and not self.head:
            if self.chunked:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                h.wfile.write(data)

    def _send_head(self) -> None:
        assert self.status is not None, "write() before start_response"
        h, self.sent = self.handler, True
        code_text, _, msg = self.status.partition(" ")
        code = int(code_text)
        h.send_response(code, msg)
        names = set()
        for key, value in self.headers:
            h.send_header(key, value)  # a "Connection: close" of the app's sets close_connection
            names.add(key.lower())
        framed = "content-length" in names or self.head or code < 200 or code in _NO_BODY
        if not framed:
            self.chunked = True
            h.send_header("Transfer-Encoding", "chunked")
        if "connection" not in names and h.must_close():
            h.send_header("Connection", "close")  # sets close_connection
        h.end_headers()

    def error(self) -> None:
        data = b"Internal Server Error"
        self.status = "500 Internal Server Error"
        self.headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))]
        self.chunked = False
        self.write(data)
        self.handler.wfile.flush()


class KeepAliveServer(ThreadedWSGIServer):
    """werkzeug's threaded server with `KeepAliveHandler` and its open connections known."""

    def __init__(self, host: str, port: int, app: Any) -> None:
        self.closing = False
        self._open: set[KeepAliveHandler] = set()
        self._changed = threading.Condition()
        super().__init__(host, port, app, handler=KeepAliveHandler)

    def track(self, handler: KeepAliveHandler, opened: bool) -> None:
        with self._changed:
            if opened:
                self._open.add(handler)
            else:
                self._open.discard(handler)
            self._changed.notify_all()

    def open_connections(self) -> int:
        with self._changed:
            return len(self._open)

    def close_connections(self, timeout: float = 5.0) -> bool:
        """Refuse further requests, end idle connections, wait for busy ones (bounded).

        True when every connection ended in time. A busy one ends after its response;
        one that was idle when first looked at may have taken a request since, so each
        pass shuts whatever is idle now."""
        self.closing = True
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._open:
                for h in self._open:
                    if not h.busy:  # waiting for a request line: end it now
                        _shut(h.connection)
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.05))
            return True


def _shut(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        conn.shutdown(socket.SHUT_RDWR)


def make_server(host: str, port: int, app: Any) -> KeepAliveServer:
    return KeepAliveServer(host, port, app)
