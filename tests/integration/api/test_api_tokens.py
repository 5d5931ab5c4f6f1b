"""Personal API tokens: shown once, listed without secrets, scoped, revocable, tenant-private."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.api.auth_support import access_token, bearer
from tests.integration.api.auth_support import settings as settings  # the fixture, cheap argon2


def _create(
    api: httpx.Client, session: str, scope: str = "read", name: str = "script", **headers: str
) -> httpx.Response:
    return api.post(
        "/v1/api-tokens", json={"name": name, "scope": scope}, headers={**bearer(session), **headers}
    )


def test_a_created_token_is_shown_once_and_works_as_a_bearer_credential(api: httpx.Client) -> None:
    session = access_token(api)

    response = _create(api, session)

    assert response.status_code == 201
    body = response.json()
    assert body["secret"].startswith(f"tk_{body['token']['prefix']}_")
    assert response.headers["cache-control"] == "no-store"
    me = api.get("/v1/me", headers=bearer(body["secret"]))
    assert me.status_code == 200
    assert me.json()["id"] == api.get("/v1/me", headers=bearer(session)).json()["id"]


def test_listing_never_shows_the_secret(api: httpx.Client) -> None:
    session = access_token(api)
    secret = _create(api, session).json()["secret"]

    response = api.get("/v1/api-tokens", headers=bearer(session))

    assert response.status_code == 200
    (listed,) = response.json()["items"]
    assert set(listed) == {
        "id",
        "name",
        "prefix",
        "scope",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    }
    assert secret not in response.text
    assert secret.split("_", 2)[2] not in response.text  # the random part (may hold "_")


def test_a_read_only_token_can_read_but_not_change_state(api: httpx.Client) -> None:
    session = access_token(api)
    read_only = _create(api, session, scope="read").json()
    target = _create(api, session, name="other").json()["token"]["id"]

    assert api.get("/v1/me", headers=bearer(read_only["secret"])).status_code == 200
    response = api.delete(f"/v1/api-tokens/{target}", headers=bearer(read_only["secret"]))

    assert response.status_code == 403
    assert response.json()["detail"]["code"] == "INSUFFICIENT_SCOPE"
    assert api.get("/v1/api-tokens", headers=bearer(session)).json()["items"][0]["revoked_at"] is None


def test_a_trading_token_may_change_state(api: httpx.Client) -> None:
    session = access_token(api)
    trading = _create(api, session, scope="trading").json()
    target = _create(api, session, name="other").json()["token"]["id"]

    assert api.delete(f"/v1/api-tokens/{target}", headers=bearer(trading["secret"])).status_code == 204


def test_an_api_token_cannot_mint_tokens(api: httpx.Client) -> None:
    session = access_token(api)
    trading = _create(api, session, scope="trading").json()

    response = _create(api, trading["secret"])

    assert response.status_code == 403
    assert response.json()["detail"]["code"] == "INSUFFICIENT_SCOPE"


def test_a_revoked_token_is_refused_at_once(api: httpx.Client) -> None:
    session = access_token(api)
    created = _create(api, session).json()

    assert api.delete(f"/v1/api-tokens/{created['token']['id']}", headers=bearer(session)).status_code == 204

    response = api.get("/v1/me", headers=bearer(created["secret"]))
    assert response.status_code == 401
    assert response.json()["detail"]["code"] == "UNAUTHORIZED"


def test_a_token_with_a_wrong_secret_but_a_real_prefix_is_refused(api: httpx.Client) -> None:
    session = access_token(api)
    secret = _create(api, session).json()["secret"]
    forged = secret[: -len("AAAA")] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")

    assert api.get("/v1/me", headers=bearer(forged)).status_code == 401


def test_another_users_token_is_404_and_stays_valid(api: httpx.Client) -> None:
    alice = access_token(api)
    bob = access_token(api)
    bobs = _create(api, bob).json()

    response = api.delete(f"/v1/api-tokens/{bobs['token']['id']}", headers=bearer(alice))

    assert response.status_code == 404
    assert response.json()["detail"]["code"] == "NOT_FOUND"
    assert api.get("/v1/me", headers=bearer(bobs["secret"])).status_code == 200
    assert api.get("/v1/api-tokens", headers=bearer(alice)).json()["items"] == []


def test_revoking_an_unknown_token_is_404(api: httpx.Client) -> None:
    session = access_token(api)

    response = api.delete("/v1/api-tokens/00000000-0000-4000-8000-000000000000", headers=bearer(session))

    assert response.status_code == 404


def test_token_creation_and_revocation_are_audited(api: httpx.Client, settings: Any) -> None:
    import psycopg

    session = access_token(api)
    token_id = _create(api, session).json()["token"]["id"]
    api.delete(f"/v1/api-tokens/{token_id}", headers=bearer(session))

    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute("SELECT action, target_id, detail::text FROM audit_log ORDER BY id").fetchall()
    assert [(action, target) for action, target, _ in rows][-2:] == [
        ("api_token.created", token_id),
        ("api_token.revoked", token_id),
    ]
    assert all("tk_" not in detail for *_, detail in rows)
