"""Broker keys are managed from a signed-in session only: an API token, even with the trading
scope, can read the hints but not add, remove or unlock a key."""

from __future__ import annotations

import httpx

from tests.integration.api.auth_support import settings as settings  # the fixture, cheap argon2
from tests.integration.api.trading_support import API_KEY, create_credential, new_user


def test_an_api_token_cannot_add_remove_or_unlock_broker_keys(api: httpx.Client) -> None:
    owner = new_user(api)
    credential = create_credential(api, owner)
    trading = api.post(
        "/v1/api-tokens", json={"name": "bot script", "scope": "trading"}, headers=owner.headers
    ).json()["secret"]
    script = {"Authorization": f"Bearer {trading}"}

    created = api.post(
        "/v1/broker-credentials",
        json={"exchange": "simulated", "label": "x", "api_key": API_KEY, "secret": "s" * 32},
        headers=script,
    )
    deleted = api.delete(f"/v1/broker-credentials/{credential['id']}", headers=script)
    verified = api.post(f"/v1/broker-credentials/{credential['id']}/verify", headers=script)
    listed = api.get("/v1/broker-credentials", headers=script)

    assert [r.status_code for r in (created, deleted, verified)] == [403, 403, 403]
    assert {r.json()["detail"]["code"] for r in (created, deleted, verified)} == {"INSUFFICIENT_SCOPE"}
    assert [item["id"] for item in listed.json()["items"]] == [credential["id"]]
