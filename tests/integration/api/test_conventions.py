"""The conventions every endpoint follows, shown on /v1/api-tokens: cursor pagination,
Idempotency-Key replay and mismatch, and bounded page sizes."""

from __future__ import annotations

import base64
import json
import threading

import httpx
import psycopg
import pytest

from tests.integration.api.auth_support import access_token, bearer
from tests.integration.api.auth_support import settings as settings  # the fixture, cheap argon2


def _create(api: httpx.Client, session: str, name: str, key: str | None = None) -> httpx.Response:
    headers = bearer(session) | ({"Idempotency-Key": key} if key else {})
    return api.post("/v1/api-tokens", json={"name": name}, headers=headers)


def test_pages_walk_every_item_once_newest_first(api: httpx.Client) -> None:
    session = access_token(api)
    created = [_create(api, session, f"t{i}").json()["token"]["id"] for i in range(5)]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = api.get("/v1/api-tokens", params=params, headers=bearer(session)).json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert seen == list(reversed(created))


@pytest.mark.parametrize("limit", [0, 201, -1, "many"])
def test_a_page_size_outside_1_to_200_is_refused(api: httpx.Client, limit: object) -> None:
    response = api.get("/v1/api-tokens", params={"limit": limit}, headers=bearer(access_token(api)))

    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "limit"


def test_a_tampered_cursor_is_refused(api: httpx.Client) -> None:
    session = access_token(api)
    for i in range(3):
        _create(api, session, f"t{i}")
    cursor = api.get("/v1/api-tokens", params={"limit": 1}, headers=bearer(session)).json()["next_cursor"]
    data, mac = cursor.split(".")
    payload = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    payload["created_at"] = "2999-01-01T00:00:00+00:00"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode() + "." + mac

    response = api.get("/v1/api-tokens", params={"cursor": forged}, headers=bearer(session))

    assert response.status_code == 422
    assert response.json()["detail"] == {
        "code": "VALIDATION_ERROR",
        "message": response.json()["detail"]["message"],
        "field": "cursor",
    }


@pytest.mark.parametrize("cursor", ["garbage", "a.b", "....", "eyJ9.AAAA", "%%%"])
def test_a_garbage_cursor_is_refused(api: httpx.Client, cursor: str) -> None:
    response = api.get("/v1/api-tokens", params={"cursor": cursor}, headers=bearer(access_token(api)))

    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "cursor"


def test_the_same_key_and_body_replay_the_first_response(api: httpx.Client) -> None:
    session = access_token(api)
    first = _create(api, session, "ci", key="key-1")

    again = _create(api, session, "ci", key="key-1")

    assert first.status_code == again.status_code == 201
    assert again.json()["token"] == first.json()["token"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(api.get("/v1/api-tokens", headers=bearer(session)).json()["items"]) == 1


def test_the_same_key_with_another_body_is_refused(api: httpx.Client) -> None:
    session = access_token(api)
    _create(api, session, "ci", key="key-1")

    response = _create(api, session, "deploy", key="key-1")

    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(api.get("/v1/api-tokens", headers=bearer(session)).json()["items"]) == 1


def test_keys_belong_to_one_user(api: httpx.Client) -> None:
    alice, bob = access_token(api), access_token(api)
    alices = _create(api, alice, "ci", key="shared")

    bobs = _create(api, bob, "ci", key="shared")

    assert bobs.status_code == 201
    assert "idempotent-replayed" not in bobs.headers
    assert bobs.json()["token"]["id"] != alices.json()["token"]["id"]


def test_a_failed_request_does_not_burn_its_key(api: httpx.Client) -> None:
    session = access_token(api)
    past = api.post(
        "/v1/api-tokens",
        json={"name": "ci", "expires_at": 946_684_800_000},  # 2000-01-01
        headers=bearer(session) | {"Idempotency-Key": "k"},
    )
    assert past.status_code == 422

    retry = _create(api, session, "ci", key="k")

    assert retry.status_code == 201


def test_concurrent_requests_with_one_key_create_once(api: httpx.Client, settings) -> None:
    session = access_token(api)
    results: list[int] = []

    def send() -> None:
        with httpx.Client(base_url=str(api.base_url), timeout=10) as client:
            results.append(_create(client, session, "race", key="race-key").status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(results) <= {201, 409}
    assert 201 in results
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_tokens").fetchone() == (1,)


@pytest.mark.parametrize("key", ["", "x" * 256, "has space"])
def test_a_malformed_idempotency_key_is_refused(api: httpx.Client, key: str) -> None:
    headers = bearer(access_token(api)) | {"Idempotency-Key": key}

    response = api.post("/v1/api-tokens", json={"name": "ci"}, headers=headers)

    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "Idempotency-Key"


def test_a_crash_between_creating_and_recording_the_response_creates_nothing(
    api: httpx.Client, settings
) -> None:
    # Storing the response fails after the token row was written (as a crash there would).
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION fail_completion() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'crash before the response was stored'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER fail_completion BEFORE UPDATE OF response_status ON idempotency_keys"
            " FOR EACH ROW EXECUTE FUNCTION fail_completion()"
        )
    session = access_token(api)
    failed = _create(api, session, "ci", key="crash-key")
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER fail_completion ON idempotency_keys")
        # Whatever claim the failed request left is older than the abandonment window.
        conn.execute("UPDATE idempotency_keys SET created_at = now() - interval '1 hour'")

    retry = _create(api, session, "ci", key="crash-key")
    again = _create(api, session, "ci", key="crash-key")

    assert failed.status_code == 500
    assert retry.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    with psycopg.connect(settings.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_tokens").fetchone() == (1,)


def test_a_replay_of_a_token_creation_answers_the_token_without_its_secret(api: httpx.Client) -> None:
    session = access_token(api)
    first = _create(api, session, "ci", key="key-1")

    again = _create(api, session, "ci", key="key-1")

    assert first.json()["secret"].startswith("tk_")
    assert again.json() == {"token": first.json()["token"], "secret": None}
