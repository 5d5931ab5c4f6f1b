"""Passwords, tokens and hashes never appear in responses they do not belong to, nor in logs."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from functions.api.security import TradingUser
from tests.integration.api.auth_support import PASSWORD, bearer
from tests.integration.api.auth_support import settings as settings  # the fixture, cheap argon2

CANARY_PASSWORD = "canary-password-9f8e7d6c5b4a"


def test_no_secret_reaches_a_response_or_a_log_line(
    api: httpx.Client, settings: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    registered = api.post(
        "/v1/auth/register", json={"email": "canary@example.com", "password": CANARY_PASSWORD}
    )
    tokens = registered.json()["tokens"]
    api.post("/v1/auth/login", json={"email": "canary@example.com", "password": "wrong-" + CANARY_PASSWORD})
    login = api.post("/v1/auth/login", json={"email": "canary@example.com", "password": CANARY_PASSWORD})
    refreshed = api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    reuse = api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    created = api.post("/v1/api-tokens", json={"name": "ci"}, headers=bearer(tokens["access_token"]))
    secret = created.json()["secret"]
    listed = api.get("/v1/api-tokens", headers=bearer(tokens["access_token"]))
    me = api.get("/v1/me", headers=bearer(secret))
    with psycopg.connect(settings.database_url) as conn:
        (password_hash,) = conn.execute("SELECT password_hash FROM users").fetchone()  # type: ignore[misc]

    every_response = [registered, login, refreshed, reuse, created, listed, me]
    shown_once = {id(registered): tokens, id(login): {}, id(refreshed): {}, id(created): {}}
    for response in every_response:
        text = response.text + "".join(f"{k}: {v}" for k, v in response.headers.items())
        assert CANARY_PASSWORD not in text
        assert password_hash not in text and "$argon2id$" not in text
        if id(response) not in shown_once:
            assert secret not in text
            assert tokens["refresh_token"] not in text
    assert secret not in listed.text and secret not in me.text

    captured = capfd.readouterr()
    logged = captured.out + captured.err + caplog.text
    for value in (CANARY_PASSWORD, password_hash, secret, tokens["refresh_token"], tokens["access_token"]):
        assert value not in logged


def test_trading_routes_refuse_read_only_tokens(api: httpx.Client) -> None:
    # A route that exists only in this test, guarded like every state-changing endpoint.
    @api.app.post("/test-only/trade")  # type: ignore[attr-defined]
    def trade(principal: TradingUser) -> dict[str, str]:
        return {"user_id": str(principal.user_id), "via": principal.via}

    session = api.post("/v1/auth/register", json={"email": "t@example.com", "password": PASSWORD}).json()
    access = session["tokens"]["access_token"]
    read_only = api.post("/v1/api-tokens", json={"name": "r", "scope": "read"}, headers=bearer(access)).json()
    trading = api.post(
        "/v1/api-tokens", json={"name": "t", "scope": "trading"}, headers=bearer(access)
    ).json()

    refused = api.post("/test-only/trade", headers=bearer(read_only["secret"]))

    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "INSUFFICIENT_SCOPE"
    assert api.post("/test-only/trade", headers=bearer(trading["secret"])).json()["via"] == "api_token"
    assert api.post("/test-only/trade", headers=bearer(access)).json()["via"] == "session"
    assert api.post("/test-only/trade").status_code == 401


def test_no_table_holds_a_secret_after_idempotent_creates(api: httpx.Client, settings: Any) -> None:
    session = api.post("/v1/auth/register", json={"email": "s@example.com", "password": PASSWORD}).json()
    auth = bearer(session["tokens"]["access_token"])
    token = api.post(
        "/v1/api-tokens", json={"name": "ci"}, headers=auth | {"Idempotency-Key": "token-1"}
    ).json()
    credential_secret = "credential-secret-" + "q" * 24
    credential = api.post(
        "/v1/broker-credentials",
        json={
            "exchange": "simulated",
            "label": "sim",
            "api_key": "KEY-abcdefgh-1234",
            "secret": credential_secret,
        },
        headers=auth | {"Idempotency-Key": "credential-1"},
    )
    assert credential.status_code == 201

    secrets = {
        "api token": token["secret"],
        # tk_<prefix>_<random>: the random part may itself contain "_" (urlsafe base64).
        "api token's random part": token["secret"].split("_", 2)[2],
        "password": PASSWORD,
        "refresh token": session["tokens"]["refresh_token"],
        "exchange secret": credential_secret,
    }
    found = []
    with psycopg.connect(settings.database_url) as conn:
        tables = [
            row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        for table in tables:
            text = "\n".join(row[0] for row in conn.execute(f"SELECT t::text FROM {table} t"))
            found += [f"{name} in {table}" for name, value in secrets.items() if value in text]
    assert found == []
