"""AWS Signature Version 4, checked by the embedded AWS on every API request.

The emulator recomputes each request's signature as AWS does (the canonical request from
the raw path, query and the headers the client listed in ``SignedHeaders``) with the
secret of the access key it names: the local credentials iotpipe signs with, or a key
this emulator issued (IAM ``CreateAccessKey``, STS). A request signed with any other key,
with a wrong secret, or not signed at all is refused, so a forged or unsigned request
cannot reach moto. Checked: the ``Authorization`` header and presigned query strings.
Not checked: the per-chunk signatures of ``aws-chunked`` bodies (only the seed signature,
whose payload hash is the literal ``STREAMING-...`` value), the session token, and the
clock (the local credentials are not a secret from the user; the checks exist so a
stray or forged request is refused, as AWS refuses it).

Pure functions but `secret_for` (moto's IAM store); `verify` raises `SignatureError`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
_UNNORMALIZED = frozenset({"s3", "s3-object-lambda", "s3express"})  # S3 signs the raw path
_HINT = (
    "the embedded AWS accepts requests signed (AWS Signature Version 4) with its local "
    "credentials: access key id 'testing', secret access key 'testing'"
)


class SignatureError(Exception):
    """A request the emulator refuses: `code` as AWS names it, `message` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Signed:
    """What a request says about its own signature."""

    access_key: str
    scope: str  # date/region/service/aws4_request
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    presigned: bool

    @property
    def service(self) -> str:
        parts = self.scope.split("/")
        return parts[2] if len(parts) == 4 else ""

    @property
    def region(self) -> str:
        parts = self.scope.split("/")
        return parts[1] if len(parts) == 4 else ""


def _header(environ: dict[str, Any], name: str) -> str | None:
    key = name.upper().replace("-", "_")
    if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        return environ.get(key)
    return environ.get("HTTP_" + key)


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        pairs.append((unquote(key), unquote(value)))
    return pairs


def _credential(value: str) -> tuple[str, str]:
    key, sep, scope = value.partition("/")
    parts = scope.split("/")
    if not sep or len(parts) != 4 or parts[3] != "aws4_request":
        raise SignatureError("IncompleteSignatureException", f"malformed Credential {value!r}")
    return key, scope


def _amz_date(environ: dict[str, Any], given: str | None) -> str:
    if given:
        return given
    date = _header(environ, "date")
    try:
        return parsedate_to_datetime(date or "").strftime("%Y%m%dT%H%M%SZ")
    except (TypeError, ValueError):
        raise SignatureError(
            "IncompleteSignatureException", "the request has neither X-Amz-Date nor Date"
        ) from None


def parse(environ: dict[str, Any]) -> Signed | None:
    """The request's SigV4 claims; None when it carries no signature at all."""
    auth = _header(environ, "authorization")
    if auth:
        algorithm, _, rest = auth.strip().partition(" ")
        if algorithm != ALGORITHM:
            raise SignatureError(
                "IncompleteSignatureException",
                f"unsupported signing method {algorithm[:40]!r}: {_HINT}",
            )
        fields = dict(p.strip().partition("=")[::2] for p in rest.split(",") if "=" in p)
        if not {"Credential", "SignedHeaders", "Signature"} <= set(fields):
            raise SignatureError("IncompleteSignatureException", "incomplete Authorization header")
        key, scope = _credential(fields["Credential"])
        date = _amz_date(environ, _header(environ, "x-amz-date"))
        headers = tuple(fields["SignedHeaders"].split(";"))
        return Signed(key, scope, headers, fields["Signature"], date, presigned=False)
    query = dict(_query_pairs(environ.get("QUERY_STRING", "")))
    if "X-Amz-Signature" not in query:
        return None
    if query.get("X-Amz-Algorithm") != ALGORITHM:
        raise SignatureError(
            "IncompleteSignatureException", f"unsupported X-Amz-Algorithm: {_HINT}"
        )
    key, scope = _credential(query.get("X-Amz-Credential", ""))
    headers = tuple(query.get("X-Amz-SignedHeaders", "host").split(";"))
    date = _amz_date(environ, query.get("X-Amz-Date"))
    return Signed(key, scope, headers, query["X-Amz-Signature"], date, presigned=True)


def _normalize_path(path: str) -> str:
    """Remove dot segments and repeated slashes, as botocore does before encoding again."""
    from botocore.utils import normalize_url_path  # deferred: see `secret_for`

    return normalize_url_path(path)


def canonical_request(environ: dict[str, Any], signed: Signed, body: bytes) -> str:
    """The canonical request AWS would build from this request (raises if a header is gone)."""
    raw = urlsplit(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "/")
    path = raw.path or "/"
    if signed.service not in _UNNORMALIZED:
        path = quote(_normalize_path(path), safe="/~")
    pairs = [
        (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
        for k, v in _query_pairs(environ.get("QUERY_STRING", ""))
        if not (signed.presigned and k == "X-Amz-Signature")
    ]
    query = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    lines = []
    for name in signed.signed_headers:
        value = _header(environ, name)
        if value is None:
            raise SignatureError(
                "IncompleteSignatureException", f"signed header {name!r} is not in the request"
            )
        lines.append(f"{name}:{' '.join(value.split())}")
    payload = _header(environ, "x-amz-content-sha256")
    if payload is None:
        unsigned = signed.presigned and signed.service in _UNNORMALIZED
        payload = UNSIGNED_PAYLOAD if unsigned else hashlib.sha256(body).hexdigest()
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    headers = "\n".join(lines) + "\n"
    return "\n".join([method, path, query, headers, ";".join(signed.signed_headers), payload])


def signature(secret: str, signed: Signed, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = "\n".join([ALGORITHM, signed.amz_date, signed.scope, digest])
    key = ("AWS4" + secret).encode()
    for part in signed.scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def secret_for(access_key: str) -> str | None:
    """The secret of a key the emulator knows: the local credentials, or one it issued."""
    # Deferred: `lifecycle` (the CLI side) imports this module through `guard`, and must
    # load neither boto3 (`iotpipe.aws`) nor moto (`motointernals`) to start or stop.
    from iotpipe.aws import LOCAL_CREDENTIALS
    from iotpipe.local import motointernals as moto

    if access_key == LOCAL_CREDENTIALS["aws_access_key_id"]:
        return LOCAL_CREDENTIALS["aws_secret_access_key"]
    return moto.issued_secret(access_key)


def verify(environ: dict[str, Any], body: bytes) -> Signed:
    """The request's signature, checked; SignatureError says why it is refused."""
    signed = parse(environ)
    if signed is None:
        raise SignatureError(
            "MissingAuthenticationTokenException",
            f"Request is missing Authentication Token: {_HINT}",
        )
    secret = secret_for(signed.access_key)
    if secret is None:
        raise SignatureError(
            "UnrecognizedClientException",
            f"The security token included in the request is invalid (access key id "
            f"{signed.access_key[:32]!r} is unknown here): {_HINT}",
        )
    expected = signature(secret, signed, canonical_request(environ, signed, body))
    if not hmac.compare_digest(expected, signed.signature):
        raise SignatureError(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )
    return signed
