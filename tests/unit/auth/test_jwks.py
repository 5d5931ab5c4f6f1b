"""Tokens of an external issuer (Cognito-style RS256) verified against its JWKS, served on loopback."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tekoa.auth.jwt_tokens import IssuerRouter, JwksTokens, PlatformTokens
from tekoa.errors import AuthenticationFailed

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_test"
AUDIENCE = "client-123"
KID = "key-1"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    jwk = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    document = json.dumps({"keys": [{**jwk, "kid": KID, "alg": "RS256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *_: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    server.shutdown()


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "iat": now, "exp": now + 300}
    claims.update(changes)
    return claims


def _token(key: rsa.RSAPrivateKey, kid: str = KID, **changes: Any) -> str:
    return jwt.encode(_claims(**changes), key, algorithm="RS256", headers={"kid": kid})


def test_a_token_signed_by_the_issuer_is_accepted_as_a_session(
    jwks_url: str, signing_key: rsa.RSAPrivateKey
) -> None:
    user_id = uuid.uuid4()

    claims = JwksTokens(jwks_url, ISSUER, AUDIENCE).verify(_token(signing_key, sub=str(user_id)))

    assert claims.user_id == user_id
    assert claims.scopes == {"read", "trading"}


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "another-client"},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 60},
        {"sub": "x"},
    ],
    ids=["wrong audience", "wrong issuer", "expired", "sub not a user id"],
)
def test_a_token_with_a_bad_claim_is_refused(
    jwks_url: str, signing_key: rsa.RSAPrivateKey, changes: dict[str, Any]
) -> None:
    with pytest.raises(AuthenticationFailed):
        JwksTokens(jwks_url, ISSUER, AUDIENCE).verify(_token(signing_key, **changes))


def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(jwks_url: str) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(AuthenticationFailed):
        JwksTokens(jwks_url, ISSUER, AUDIENCE).verify(_token(impostor))


def test_a_token_naming_an_unknown_kid_is_refused(jwks_url: str, signing_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(AuthenticationFailed):
        JwksTokens(jwks_url, ISSUER, AUDIENCE).verify(_token(signing_key, kid="other"))


def test_an_hs256_token_keyed_with_the_public_key_is_refused(
    jwks_url: str, signing_key: rsa.RSAPrivateKey
) -> None:
    # Algorithm confusion: the public key used as an HMAC secret must not verify.
    from cryptography.hazmat.primitives import serialization

    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": KID}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(_claims()).encode())
    signature = hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    token = (header + b"." + payload + b"." + jwt.utils.base64url_encode(signature)).decode()

    with pytest.raises(AuthenticationFailed):
        JwksTokens(jwks_url, ISSUER, AUDIENCE).verify(token)


def test_the_router_sends_each_token_to_its_issuers_verifier(
    jwks_url: str, signing_key: rsa.RSAPrivateKey
) -> None:
    platform = PlatformTokens(b"k" * 64, "tekoa", "tekoa-api")
    router = IssuerRouter(platform, JwksTokens(jwks_url, ISSUER, AUDIENCE))
    own_user, external_user = uuid.uuid4(), uuid.uuid4()

    assert router.verify(platform.issue(own_user, {"read"}).token).user_id == own_user
    assert router.verify(_token(signing_key, sub=str(external_user))).user_id == external_user
    with pytest.raises(AuthenticationFailed):
        # An external-issuer claim signed with the platform key is still checked by JWKS.
        router.verify(jwt.encode(_claims(), b"k" * 64, algorithm="HS256"))
