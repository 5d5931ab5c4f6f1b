"""Sign-up, sign-in, refresh rotation with reuse detection, logout and /v1/me, over real HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from tests.integration.api.auth_support import PASSWORD, bearer, register
from tests.integration.api.auth_support import settings as settings  # the fixture, cheap argon2


def _audit_actions(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [row[0] for row in conn.execute("SELECT action FROM audit_log ORDER BY id").fetchall()]


def test_register_creates_a_signed_in_account_with_a_normalised_email(api: httpx.Client) -> None:
    response = api.post(
        "/v1/auth/register",
        json={"email": "  Alice@Example.COM ", "password": PASSWORD, "display_name": "Alice"},
    )

    assert response.status_code == 201
    body = response.json()
    assert body["user"]["email"] == "alice@example.com"
    assert body["user"]["display_name"] == "Alice"
    assert body["tokens"]["token_type"] == "bearer"
    assert response.headers["cache-control"] == "no-store"
    me = api.get("/v1/me", headers=bearer(body["tokens"]["access_token"]))
    assert me.status_code == 200
    assert me.json() == body["user"]


def test_an_email_registers_once_whatever_its_case(api: httpx.Client) -> None:
    register(api, "bob@example.com")

    response = api.post("/v1/auth/register", json={"email": "BOB@example.com", "password": PASSWORD})

    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "EMAIL_TAKEN"


def test_a_short_password_is_refused_with_the_field_named(api: httpx.Client) -> None:
    response = api.post("/v1/auth/register", json={"email": "c@example.com", "password": "short"})

    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "password"
    assert "short" not in response.text


def test_a_malformed_email_is_refused(api: httpx.Client) -> None:
    response = api.post("/v1/auth/register", json={"email": "not-an-email", "password": PASSWORD})

    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "email"


def test_login_returns_a_bearer_access_token_and_a_refresh_token(api: httpx.Client) -> None:
    register(api, "dana@example.com")

    response = api.post("/v1/auth/login", json={"email": "DANA@example.com", "password": PASSWORD})

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["refresh_token"]
    assert api.get("/v1/me", headers=bearer(body["access_token"])).json()["email"] == "dana@example.com"


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(api: httpx.Client) -> None:
    register(api, "erin@example.com")

    wrong_password = api.post("/v1/auth/login", json={"email": "erin@example.com", "password": "x" * 12})
    unknown_email = api.post("/v1/auth/login", json={"email": "nobody@example.com", "password": "x" * 12})

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password.json()["detail"]["code"] == "INVALID_CREDENTIALS"


def test_refresh_rotates_the_refresh_token(api: httpx.Client) -> None:
    first = register(api)["tokens"]

    response = api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})

    assert response.status_code == 200
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert api.get("/v1/me", headers=bearer(second["access_token"])).status_code == 200
    assert api.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 200


def test_reusing_a_spent_refresh_token_revokes_the_whole_family(api: httpx.Client, settings: Any) -> None:
    first = register(api)["tokens"]
    second = api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()

    reuse = api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})

    assert reuse.status_code == 401
    assert reuse.json()["detail"]["code"] == "UNAUTHORIZED"
    # The legitimate-looking newest token of the family is dead too: a thief is locked out.
    assert api.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    assert "auth.refresh_reused" in _audit_actions(settings.database_url)


def test_reuse_revokes_only_the_family_of_that_sign_in(api: httpx.Client) -> None:
    first = register(api, "fay@example.com")["tokens"]
    other_session = api.post("/v1/auth/login", json={"email": "fay@example.com", "password": PASSWORD}).json()
    api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})

    api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})

    assert (
        api.post("/v1/auth/refresh", json={"refresh_token": other_session["refresh_token"]}).status_code
        == 200
    )


def test_logout_revokes_the_refresh_family(api: httpx.Client) -> None:
    tokens = register(api)["tokens"]

    response = api.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})

    assert response.status_code == 204
    assert api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_an_unknown_refresh_token_is_401(api: httpx.Client) -> None:
    response = api.post("/v1/auth/refresh", json={"refresh_token": "not-a-token"})

    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "UNAUTHORIZED"


def test_me_without_credentials_is_401_with_a_bearer_challenge(api: httpx.Client) -> None:
    response = api.get("/v1/me")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["detail"]["code"] == "UNAUTHORIZED"


def test_sign_up_and_sign_in_outcomes_are_audited(api: httpx.Client, settings: Any) -> None:
    register(api, "gil@example.com")
    api.post("/v1/auth/login", json={"email": "gil@example.com", "password": "wrong password!"})
    api.post("/v1/auth/login", json={"email": "gil@example.com", "password": PASSWORD})
    api.post("/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong password!"})

    assert _audit_actions(settings.database_url) == [
        "user.registered",
        "auth.login_failed",
        "auth.login_succeeded",
    ]


def test_control_characters_are_refused_at_the_door(api: httpx.Client) -> None:
    bad_email = api.post("/v1/auth/register", json={"email": "a\u0000b@example.com", "password": PASSWORD})
    bad_name = api.post(
        "/v1/auth/register", json={"email": "n@example.com", "password": PASSWORD, "display_name": "x\u0000"}
    )
    bad_login = api.post("/v1/auth/login", json={"email": "a\u0000@example.com", "password": PASSWORD})

    assert (bad_email.status_code, bad_name.status_code, bad_login.status_code) == (422, 422, 422)
