"""Helpers for the trading-resource API tests: users, strategies, bots and credentials made
through the public API, and a fake credential verifier for exchanges we cannot reach."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx

from tekoa.domain.resources import CredentialRejected, CredentialSecrets
from tests.conftest import use_verifier
from tests.integration.api.auth_support import bearer, register
from tests.unit.strategies.examples import GRID, SCALPER

_names = itertools.count()


@dataclass(frozen=True)
class Caller:
    """A registered user and the headers that act as them."""

    user_id: UUID
    headers: dict[str, str]


def new_user(api: httpx.Client) -> Caller:
    body = register(api)
    return Caller(UUID(body["user"]["id"]), bearer(body["tokens"]["access_token"]))


def read_only(api: httpx.Client, caller: Caller) -> dict[str, str]:
    """Headers with a read-only personal API token of `caller`."""
    response = api.post("/v1/api-tokens", json={"name": "reader", "scope": "read"}, headers=caller.headers)
    assert response.status_code == 201, response.text
    return bearer(response.json()["secret"])


def scalper_definition(**params: Any) -> dict[str, Any]:
    return {"kind": "builtin", "bot_type": "scalper", "params": {**SCALPER, **params}}


def grid_definition() -> dict[str, Any]:
    return {"kind": "builtin", "bot_type": "grid", "params": GRID}


def create_strategy(api: httpx.Client, caller: Caller, **fields: Any) -> dict[str, Any]:
    body = {"name": f"strategy {next(_names)}", "definition": scalper_definition(), **fields}
    response = api.post("/v1/strategies", json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def create_bot(
    api: httpx.Client, caller: Caller, strategy_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    if strategy_id is None:
        strategy_id = create_strategy(api, caller)["id"]
    body = {
        "name": f"bot {next(_names)}",
        "strategy_id": strategy_id,
        "exchange": "simulated",
        "symbol": "BTC/USDT",
        **fields,
    }
    response = api.post("/v1/bots", json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


API_KEY = "AKIA1234567890WXYZ"


def create_credential(
    api: httpx.Client, caller: Caller, exchange: str = "binance", secret: str = "s3cr3t-value", **fields: Any
) -> dict[str, Any]:
    body = {
        "exchange": exchange,
        "label": f"key {next(_names)}",
        "api_key": API_KEY,
        "secret": secret,
        **fields,
    }
    response = api.post("/v1/broker-credentials", json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


class FakeVerifier:
    """Accepts keys unless told to reject; remembers what it was asked (secrets included)."""

    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.calls: list[tuple[str, CredentialSecrets]] = []

    def verify(self, exchange: str, secrets: CredentialSecrets) -> None:
        self.calls.append((exchange, secrets))
        if not self.accept:
            raise CredentialRejected(f"{exchange} refused this API key", field="api_key")


def verified_credential(api: httpx.Client, caller: Caller, exchange: str = "binance") -> dict[str, Any]:
    """A credential the (fake) exchange accepted."""
    use_verifier(api, FakeVerifier())
    credential = create_credential(api, caller, exchange=exchange)
    response = api.post(f"/v1/broker-credentials/{credential['id']}/verify", headers=caller.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
