"""Who may talk to the embedded AWS: the checks in front of moto, in one WSGI wrapper.

The emulator listens on 127.0.0.1, but that alone lets any web page in the user's browser
reach it (a form post, an image URL, or DNS rebinding: a name the attacker controls that
resolves to 127.0.0.1), and lets anything on the machine reset it. So, in this order:

1. ``Host`` must be the emulator's own address (``127.0.0.1:<port>``, ``localhost:<port>``):
   a rebound name is refused.
2. A browser's ``Origin`` must be the emulator's own (none, as sent by SDKs and curl, is
   fine); ``Sec-Fetch-Site`` (sent by browsers also when they send no ``Origin``) must be
   ``same-origin`` or ``none``. No CORS header is ever sent (moto's reflected any Origin).
3. moto's admin routes (``/moto-api/*``, which can reset or replace everything) and
   ``/_iotpipe/*`` need the token that only ``local.json`` (mode 0600) holds, in the
   ``X-Iotpipe-Token`` header. ``/_iotpipe/health`` stays open: it answers ``{"ok": true}``
   and nothing else, and it is how a starting client learns the emulator is up; so does
   ``/_iotpipe/mqtt`` (the broker's host and port and the CA certificate, all public).
4. Every other request is an AWS API call: its SigV4 signature is checked (`sigv4`).

A refusal is HTTP 403 with a body that says why, in the shape the caller's protocol
parses (XML for query-protocol and S3 calls, JSON otherwise), so an SDK shows the message.
"""

from __future__ import annotations

import hmac
import io
import json
from collections.abc import Callable, Iterable
from typing import Any
from xml.sax.saxutils import escape

from iotpipe.local import sigv4

TOKEN_HEADER = "X-Iotpipe-Token"  # noqa: S105 (a header name)
HEALTH = "/_iotpipe/health"
# The MQTT endpoint and CA certificate: public facts a device needs (devices add, send-test).
MQTT_INFO = "/_iotpipe/mqtt"
_XML_SERVICES = frozenset({"s3", "s3-object-lambda", "sts", "iam", "sns", "ec2", "cloudformation"})
WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


class Refusal(Exception):
    """A request the emulator will not serve."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def own_hosts(port: int) -> frozenset[str]:
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})


def own_origins(port: int) -> frozenset[str]:
    return frozenset(f"http://{h}" for h in own_hosts(port))


def is_admin(path: str) -> bool:
    """Routes that need the token: moto's admin API and iotpipe's own (but health and the
    MQTT endpoint's public facts)."""
    if path in (HEALTH, MQTT_INFO):
        return False
    return path.startswith(("/moto-api", "/_iotpipe/")) or path == "/favicon.ico"


def check_browser(environ: dict[str, Any], port: int) -> None:
    """Refuse a foreign Host (DNS rebinding) and any cross-site browser request."""
    host = str(environ.get("HTTP_HOST", "")).strip().lower()
    if host not in own_hosts(port):
        raise Refusal(
            "AccessDeniedException",
            f"Host {host[:100]!r} is not the embedded AWS's own address; use "
            f"http://127.0.0.1:{port} (requests for other names are refused: DNS rebinding)",
        )
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None and origin.strip().lower() not in own_origins(port):
        raise Refusal(
            "AccessDeniedException",
            f"Origin {origin[:100]!r} is not the embedded AWS: requests from web pages are refused",
        )
    site = environ.get("HTTP_SEC_FETCH_SITE")
    if site is not None and site.strip().lower() not in ("same-origin", "none"):
        raise Refusal(
            "AccessDeniedException",
            f"a {site[:20]!r} browser request: requests from web pages are refused",
        )


def check_token(environ: dict[str, Any], token: str) -> None:
    given = environ.get("HTTP_" + TOKEN_HEADER.upper().replace("-", "_"), "")
    if not given:
        raise Refusal(
            "AccessDeniedException",
            f"this route needs the {TOKEN_HEADER} header: the token is in the emulator's "
            "local.json (readable only by its owner)",
        )
    if not hmac.compare_digest(str(given).encode(), token.encode()):
        raise Refusal("AccessDeniedException", f"wrong {TOKEN_HEADER}")


def read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body, put back so moto reads it again."""
    stream = environ.get("wsgi.input")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if stream is None:
        body = b""
    elif length > 0:
        body = stream.read(length)
    elif environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _wants_xml(environ: dict[str, Any], service: str) -> bool:
    if str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded"):
        return True
    if "Action=" in str(environ.get("QUERY_STRING", "")):
        return True
    return service in _XML_SERVICES


def _service(environ: dict[str, Any]) -> str:
    try:
        signed = sigv4.parse(environ)
    except sigv4.SignatureError:
        return ""
    return signed.service if signed else ""


def refuse(environ: dict[str, Any], start_response: Any, code: str, message: str) -> list[bytes]:
    """HTTP 403 whose body says why, parseable by the caller's SDK."""
    if _wants_xml(environ, _service(environ)):
        xml_code = {
            "MissingAuthenticationTokenException": "MissingAuthenticationToken",
            "UnrecognizedClientException": "InvalidClientTokenId",
            "InvalidSignatureException": "SignatureDoesNotMatch",
            "AccessDeniedException": "AccessDenied",
        }.get(code, code)
        data = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{escape(xml_code)}</Code><Message>{escape(message)}</Message>"
            "</Error><RequestId>iotpipe-local</RequestId></ErrorResponse>"
        ).encode()
        ctype = "text/xml"
    else:
        data = json.dumps({"__type": code, "message": message}).encode()
        ctype = "application/json"
    headers = [("Content-Type", ctype), ("Content-Length", str(len(data)))]
    start_response("403 Forbidden", [*headers, ("x-amzn-ErrorType", code)])
    return [data]


def no_cors(start_response: Any) -> Any:
    """start_response that drops every Access-Control-* header (no CORS, ever)."""

    def wrapped(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
        return start_response(status, kept, exc_info)

    return wrapped


def guarded(app: WsgiApp, port: Callable[[], int], token: str) -> WsgiApp:
    """`app` behind the checks above; `port` is read per request (known once bound)."""

    def serve(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        try:
            check_browser(environ, port())
            if is_admin(path):
                check_token(environ, token)
            elif path not in (HEALTH, MQTT_INFO):
                sigv4.verify(environ, read_body(environ))
        except (Refusal, sigv4.SignatureError) as e:
            return refuse(environ, start_response, e.code, e.message)
        return app(environ, no_cors(start_response))

    return serve
