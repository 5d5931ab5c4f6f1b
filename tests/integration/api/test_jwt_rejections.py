"""Every malformed, forged, expired or misdirected bearer token answers 401 with the error shape.

Each case changes one thing of an otherwise valid token; the control case proves the
untouched token is accepted, so a rejection is due to that one change.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tekoa.aws.secrets import secret_string
from tests.integration.api.auth_support import bearer, register
from tests.integration.api.auth_support import settings as settings  # the fixture, cheap argon2


def _claims(user_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "tekoa",
        "aud": "tekoa-api",
        "sub": user_id,
        "iat": now,
        "exp": now + 600,
        "jti": "j1",
        "gen": 0,
        "typ": "access",
        "scope": "read trading",
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _rs256(claims: dict[str, Any]) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwt.encode(claims, pem, algorithm="RS256")


Forge = Callable[[bytes, str, str], str]
"""(signing key, user id, a real refresh token) -> bearer token"""

CASES: dict[str, Forge] = {
    "alg none": lambda key, uid, _: _unsigned(_claims(uid)),
    "wrong key": lambda key, uid, _: jwt.encode(_claims(uid), b"x" * 64, algorithm="HS256"),
    "another algorithm (RS256)": lambda key, uid, _: _rs256(_claims(uid)),
    "HS512 with the right key": lambda key, uid, _: jwt.encode(_claims(uid), key, algorithm="HS512"),
    "wrong issuer": lambda key, uid, _: jwt.encode(_claims(uid, iss="evil"), key, algorithm="HS256"),
    "wrong audience": lambda key, uid, _: jwt.encode(_claims(uid, aud="other-api"), key, algorithm="HS256"),
    "expired": lambda key, uid, _: jwt.encode(
        _claims(uid, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600), key, algorithm="HS256"
    ),
    "missing exp": lambda key, uid, _: jwt.encode(_claims(uid, exp=None), key, algorithm="HS256"),
    "missing iat": lambda key, uid, _: jwt.encode(_claims(uid, iat=None), key, algorithm="HS256"),
    "missing sub": lambda key, uid, _: jwt.encode(_claims(uid, sub=None), key, algorithm="HS256"),
    "missing iss": lambda key, uid, _: jwt.encode(_claims(uid, iss=None), key, algorithm="HS256"),
    "missing aud": lambda key, uid, _: jwt.encode(_claims(uid, aud=None), key, algorithm="HS256"),
    "sub not a user id": lambda key, uid, _: jwt.encode(_claims(uid, sub="admin"), key, algorithm="HS256"),
    "not an access token (typ refresh)": lambda key, uid, _: jwt.encode(
        _claims(uid, typ="refresh"), key, algorithm="HS256"
    ),
    "refresh token used as access token": lambda key, uid, refresh: refresh,
    "garbage": lambda key, uid, _: "not.a.jwt",
    "API-token-looking garbage": lambda key, uid, _: "tk_garbage",
    "well-formed unknown API token": lambda key, uid, _: "tk_0123456789ab_" + "A" * 43,
}


@pytest.fixture
def victim(api: httpx.Client, settings: Any) -> tuple[bytes, str, str]:
    body = register(api)
    key = secret_string(settings, settings.names.jwt_secret).encode()
    return key, body["user"]["id"], body["tokens"]["refresh_token"]


def test_a_token_forged_with_the_real_key_and_claims_is_accepted(
    api: httpx.Client, victim: tuple[bytes, str, str]
) -> None:
    key, user_id, _ = victim

    response = api.get("/v1/me", headers=bearer(jwt.encode(_claims(user_id), key, algorithm="HS256")))

    assert response.status_code == 200


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_bearer_token_is_401(api: httpx.Client, victim: tuple[bytes, str, str], case: str) -> None:
    token = CASES[case](*victim)

    response = api.get("/v1/me", headers=bearer(token))

    assert response.status_code == 401, case
    assert response.json()["detail"]["code"] == "UNAUTHORIZED"
    assert set(response.json()["detail"]) >= {"code", "message", "field"}
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "token", "Bearer a b"])
def test_a_malformed_authorization_header_is_401(api: httpx.Client, header: str) -> None:
    response = api.get("/v1/me", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "UNAUTHORIZED"
