"""Presigned S3 URLs that expire locally as they do in S3.

moto serves a presigned GET without looking at its signature or its `X-Amz-Expires`: a URL
would work forever, and one with a longer expiry typed in would work too. This WSGI
middleware sits in front of moto and checks every query-signed (SigV4) request the way S3
does: the signature must match the one computed with the access key's secret (so no
parameter can be changed), and `X-Amz-Date + X-Amz-Expires` must not have passed. It answers
S3's own errors (403 `AccessDenied` "Request has expired", 403 `SignatureDoesNotMatch`,
403 `InvalidAccessKeyId`, 400 `AuthorizationQueryParametersError`).

SigV2 query signing is refused (S3 retired it); header-signed requests (every SDK call) pass
through untouched; moto accepts any credentials
for those, and nothing local depends on that being stricter.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

MAX_EXPIRES_S = 604_800
"""S3 refuses presigned URLs valid for more than seven days."""

_ALGORITHM = "AWS4-HMAC-SHA256"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PresignedUrlGuard:
    """WSGI middleware: verify SigV4 query signatures and expiry before moto sees the request."""

    def __init__(
        self, app: WsgiApp, secrets: Mapping[str, str], clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self.secrets = dict(secrets)
        self.clock = clock

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        if "X-Amz-Signature" in params:
            refusal = self._refusal(environ, params)
        elif "Signature" in params and "AWSAccessKeyId" in params:
            # SigV2 query signing, which S3 has retired in every region opened since 2014.
            refusal = ("400 Bad Request", "InvalidRequest", "Please use AWS4-HMAC-SHA256 (SigV4)")
        else:
            refusal = None
        if refusal is None:
            return self.app(environ, start_response)
        status, code, message = refusal
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error>"
        ).encode()
        start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]

    def _refusal(self, environ: Mapping[str, Any], params: Mapping[str, str]) -> tuple[str, str, str] | None:
        if params.get("X-Amz-Algorithm") != _ALGORITHM:
            return (
                "400 Bad Request",
                "AuthorizationQueryParametersError",
                "X-Amz-Algorithm must be AWS4-HMAC-SHA256",
            )
        try:
            access_key, _date, region, service, _terminal = params["X-Amz-Credential"].split("/")
            signed_at = datetime.strptime(params["X-Amz-Date"], _AMZ_DATE).replace(tzinfo=UTC)
            expires = int(params["X-Amz-Expires"])
        except (KeyError, ValueError):
            return (
                "400 Bad Request",
                "AuthorizationQueryParametersError",
                "malformed query-string authentication",
            )
        if not 1 <= expires <= MAX_EXPIRES_S:
            return (
                "400 Bad Request",
                "AuthorizationQueryParametersError",
                "X-Amz-Expires must be between 1 and 604800 seconds",
            )
        secret = self.secrets.get(access_key)
        if secret is None:
            return (
                "403 Forbidden",
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist",
            )
        expected = _signature(environ, params, access_key, secret, region, service, expires)
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            return (
                "403 Forbidden",
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided",
            )
        if self.clock() > signed_at.timestamp() + expires:
            return ("403 Forbidden", "AccessDenied", "Request has expired")
        return None


def _signature(
    environ: Mapping[str, Any],
    params: Mapping[str, str],
    access_key: str,
    secret: str,
    region: str,
    service: str,
    expires: int,
) -> str:
    """The SigV4 query signature S3 would compute for this request (botocore's own signer)."""
    host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
    # The signature covers the query and path exactly as sent (percent-encoded): use them raw.
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    path = raw_uri.split("?", 1)[0] if raw_uri else quote(environ.get("PATH_INFO", ""), safe="/~")
    unsigned = "&".join(
        pair for pair in environ.get("QUERY_STRING", "").split("&") if not pair.startswith("X-Amz-Signature=")
    )
    request = AWSRequest(
        method=environ["REQUEST_METHOD"], url=f"http://{host}{path}?{unsigned}", headers={"host": host}
    )
    request.context["timestamp"] = params["X-Amz-Date"]
    signer = S3SigV4QueryAuth(Credentials(access_key, secret), service, region, expires=expires)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))
