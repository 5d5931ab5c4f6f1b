"""The push adapter signs @connections requests exactly as botocore does (API Gateway rejects
any other signature), for the ids API Gateway makes and for any other id."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from tekoa.aws.push import Credentials, SigV4Signer, _quoted_id, amz_date, canonical_uri

NOW = datetime(2026, 12, 2, 1, 2, 3, tzinfo=UTC)
HOST = "abc123.execute-api.eu-west-1.amazonaws.com"


def _botocore_authorization(method: str, path: str, body: bytes, token: str | None) -> str:
    request = AWSRequest(
        method=method, url=f"https://{HOST}{path}", data=body, headers={"x-amz-date": amz_date(NOW)}
    )
    auth = SigV4Auth(BotoCredentials("AKIDEXAMPLE", "secret/key", token), "execute-api", "eu-west-1")
    request.context["timestamp"] = amz_date(NOW)  # what add_auth sets from the clock
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical)
    signature = auth.signature(string_to_sign, request)
    return str(auth._inject_signature_to_request(request, signature).headers["Authorization"])


@pytest.mark.parametrize("connection_id", ["L0SM9cOFvHcCIhw=", "a b/ü?x", "Zz09-_.~"])
@pytest.mark.parametrize(
    ("method", "body", "token"), [("POST", b'{"type":"price"}', None), ("DELETE", b"", "tok")]
)
def test_signature_matches_botocore(connection_id: str, method: str, body: bytes, token: str | None) -> None:
    import hashlib

    path = f"/live/@connections/{quote(connection_id, safe='')}"
    assert _quoted_id(connection_id) == quote(connection_id, safe="")
    headers = SigV4Signer("execute-api", "eu-west-1").headers(
        method,
        HOST,
        path,
        hashlib.sha256(body).hexdigest(),
        Credentials("AKIDEXAMPLE", "secret/key", token),
        amz_date(NOW),
    )
    assert (
        headers["authorization"].split("Signature=")[1]
        == _botocore_authorization(method, path, body, token).split("Signature=")[1]
    )
    assert canonical_uri(path).startswith("/live/%40connections/")
