"""Access tokens end with the session: sign-out, a disabled account and a deleted account
answer 401 at once, not after the token's 15 minutes."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from tests.integration.api.auth_support import bearer, register
from tests.integration.api.auth_support import settings as settings  # the fixture, cheap argon2
from tests.unit.strategies.examples import GRID

STRATEGY = {"name": "grid", "definition": {"kind": "builtin", "bot_type": "grid", "params": GRID}}


def test_after_sign_out_the_access_token_can_no_longer_change_anything(api: httpx.Client) -> None:
    tokens = register(api)["tokens"]
    auth = bearer(tokens["access_token"])
    assert api.post("/v1/strategies", json=STRATEGY, headers=auth).status_code == 201

    assert api.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code == 204
    after = api.post("/v1/strategies", json={**STRATEGY, "name": "after"}, headers=auth)

    assert after.status_code == 401
    assert after.json()["detail"]["code"] == "UNAUTHORIZED"
    assert api.get("/v1/me", headers=auth).status_code == 401


def test_a_new_sign_in_after_sign_out_works(api: httpx.Client) -> None:
    body = register(api)
    api.post("/v1/auth/logout", json={"refresh_token": body["tokens"]["refresh_token"]})

    login = api.post(
        "/v1/auth/login", json={"email": body["user"]["email"], "password": "correct horse battery staple"}
    )

    assert login.status_code == 200
    assert api.get("/v1/me", headers=bearer(login.json()["access_token"])).status_code == 200


def test_a_disabled_account_is_refused_at_once(api: httpx.Client, settings: Any) -> None:
    body = register(api)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("UPDATE users SET disabled_at = now() WHERE id = %s", (body["user"]["id"],))

    response = api.post("/v1/strategies", json=STRATEGY, headers=bearer(body["tokens"]["access_token"]))

    assert response.status_code == 401


def test_a_token_of_a_deleted_account_is_401_not_500(api: httpx.Client, settings: Any) -> None:
    body = register(api)
    with psycopg.connect(settings.database_url) as conn:
        conn.execute("DELETE FROM users WHERE id = %s", (body["user"]["id"],))

    response = api.post("/v1/strategies", json=STRATEGY, headers=bearer(body["tokens"]["access_token"]))

    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "UNAUTHORIZED"
