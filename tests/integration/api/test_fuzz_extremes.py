"""Hostile values in every parameter and body field: never a 5xx.

Every operation of the live schema is walked. Each query and path parameter gets a value with
a NUL character (PostgreSQL text cannot hold one); each field of a valid request body gets NUL
text and every Decimal extreme we know of: exponents far beyond any context, subnormals,
non-finite values, enormous mantissas and digits of other scripts. A new operation with a
parameter or body this walk cannot fill fails the walk until it gets an entry here.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.api.auth_support import CHEAP_HASHING, PASSWORD
from tests.integration.api.execution_support import Exchange
from tests.integration.api.execution_support import exchange as exchange
from tests.integration.api.trading_support import Caller, create_bot, create_credential, new_user
from tests.unit.strategies.examples import DCA, DIP, GRID, MOMENTUM, SCALPER, realistic_rules

HTTP_METHODS = ("get", "put", "post", "patch", "delete")

DECIMAL_EXTREMES: tuple[Any, ...] = (
    "1E-999999999999999999",
    "1E+999999999999999999",
    "-1E-999999999999999999",
    "1E-1000000",
    "1E+1000000",
    "4.9E-324",  # the smallest float64 subnormal
    "2.2250738585072014E-308",
    "1E-6176",  # Decimal's smallest subnormal in the default context
    "9" * 5000,
    "0." + "0" * 5000 + "1",
    "١٢٣",  # Arabic-Indic digits
    "١٢٣.٤٥",
    "１２３",  # fullwidth digits
    "NaN",
    "sNaN",
    "-Infinity",
    "Infinity",
    "1_000",
    " 1 ",
    "",
    "-0",
    1e308,
    5e-324,
    -1e308,
    10**400,
)
NUL_TEXT = "A\x00B"

TELEGRAM_CHANNEL = {
    "kind": "telegram",
    "name": "phone",
    "chat_id": "-1001234",
    "bot_token": "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0",
    "events": ["fills"],
}

# Valid values of the parameters every operation may need.
PARAMETERS = {
    "exchange": "simulated",
    "symbol": "BTC/USDT",
    "timeframe": "1m",
    "limit": "5",
}


def _bodies(world: dict[str, str]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """A valid body (or several) for every operation that takes one."""

    def strategy(bot_type: str, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": f"fuzz {bot_type}",
            "definition": {"kind": "builtin", "bot_type": bot_type, "params": params},
        }

    return {
        ("post", "/v1/auth/register"): [
            {"email": "fuzz@example.com", "password": PASSWORD, "display_name": "Fuzz"}
        ],
        ("post", "/v1/auth/login"): [{"email": "fuzz@example.com", "password": PASSWORD}],
        ("post", "/v1/auth/refresh"): [{"refresh_token": "not-a-token"}],
        ("post", "/v1/auth/logout"): [{"refresh_token": "not-a-token"}],
        ("post", "/v1/api-tokens"): [{"name": "fuzz", "scope": "read", "expires_at": 32_503_680_000_000}],
        ("post", "/v1/strategies"): [
            strategy("grid", GRID),
            # Without the optional stops, so an extreme bound reaches the level computation.
            strategy(
                "grid",
                {key: GRID[key] for key in ("lower_price", "upper_price", "levels", "spacing", "order_size")},
            ),
            strategy("scalper", SCALPER),
            strategy("dca", DCA),
            strategy("dip", DIP),
            strategy("momentum", MOMENTUM),
            {"name": "fuzz rules", "definition": {"kind": "rules", **realistic_rules()}},
        ],
        ("patch", "/v1/strategies/{strategy_id}"): [
            {"description": "changed", "version": 1, "definition": strategy("grid", GRID)["definition"]}
        ],
        ("post", "/v1/bots"): [
            {
                "name": "fuzz bot",
                "strategy_id": world["strategy_id"],
                "exchange": "simulated",
                "symbol": "BTC/USDT",
                "risk": {
                    "risk_per_trade_pct": "1",
                    "max_position_notional": "1000",
                },
            }
        ],
        ("patch", "/v1/bots/{bot_id}"): [{"name": "renamed", "version": 1}],
        **{
            ("post", f"/v1/bots/{{bot_id}}/{action}"): [{"reason": "fuzz"}]
            for action in ("start", "pause", "stop")
        },
        ("post", "/v1/bots/stop-all"): [{"reason": "fuzz"}],
        ("post", "/v1/broker-credentials"): [
            {"exchange": "simulated", "label": "fuzz", "api_key": "KEY-abcdefgh", "secret": "s" * 32}
        ],
        ("post", "/v1/charts"): [
            {
                "exchange": "simulated",
                "symbol": "BTC/USDT",
                "timeframe": "1h",
                "start": 1_717_200_000_000,
                "end": 1_717_300_000_000,
                "overlays": [
                    {"name": "sma", "params": {"period": 20, "source": "close"}},
                    {"name": "bollinger", "params": {"period": 20, "std": "2.5"}},
                ],
                "panels": [
                    {"name": "rsi", "params": {"period": 14}},
                    {"name": "macd", "params": {"fast": 12, "slow": 26, "signal": 9}},
                ],
                "volume": True,
                "style": "dark",
                "size": "mobile",
            },
            {"bot_id": world["bot_id"], "bars": 100},
        ],
        ("post", "/v1/accounts"): [
            {"exchange": "simulated", "mode": "paper", "starting_balance": "5000", "quote_currency": "USDT"}
        ],
        ("put", "/v1/accounts/{account_id}/starting-balance"): [{"starting_balance": "20000"}],
        ("post", "/v1/accounts/{account_id}/reset"): [{"confirm": True}],
        ("post", "/v1/bots/{bot_id}/force-entry"): [{"quote_amount": "100", "stop_loss_pct": "2"}],
        ("put", "/v1/risk/limits"): [
            {"max_open_positions": 5, "daily_loss_limit": {"type": "quote", "amount": "50"}}
        ],
        ("post", "/v1/risk/kill-switch"): [{"reason": "fuzz"}],
        ("post", "/v1/orders"): [
            {"exchange": "simulated", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01"},
            {
                "exchange": "simulated",
                "symbol": "BTC/USDT",
                "side": "buy",
                "type": "limit",
                "quantity": "0.01",
                "limit_price": "50000",
                "client_order_id": "fuzz-1",
            },
            {
                "exchange": "simulated",
                "symbol": "BTC/USDT",
                "side": "sell",
                "type": "stop",
                "quantity": "0.001",
                "stop_price": "40000",
            },
        ],
        ("post", "/v1/orders/{order_id}/cancel"): [{"reason": "fuzz"}],
        ("post", "/v1/positions/close-all"): [{"bot_id": world["bot_id"], "account_id": world["account_id"]}],
        ("post", "/v1/notification-channels"): [
            TELEGRAM_CHANNEL,
            {
                "kind": "webhook",
                "name": "hook",
                "url": "https://example.com/hook",
                "events": ["fills", "bot_error"],
            },
        ],
        ("patch", "/v1/notification-channels/{channel_id}"): [
            {"name": "renamed", "events": ["risk_tripped"], "enabled": False}
        ],
    }


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Paths of the scalar fields of a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


@pytest.fixture
def settings(aws_settings: Any, database_url: str) -> Any:
    # Throttling would answer 429 before the fields are even read: let every attempt through.
    return aws_settings.model_copy(
        update={
            "database_url": database_url,
            "signup_max_per_address": 100_000,
            "login_max_failures_per_account": 100_000,
            "login_max_failures_per_address": 100_000,
            # A test message goes nowhere (a closed loopback port), quickly.
            "telegram_api_url": "http://127.0.0.1:9",
            **CHEAP_HASHING,
        }
    )


def _world(api: httpx.Client, exchange: Exchange) -> tuple[Caller, dict[str, str]]:
    caller = new_user(api)
    bot = create_bot(api, caller)
    credential = create_credential(api, caller, exchange="simulated")
    token = api.post("/v1/api-tokens", json={"name": "t"}, headers=caller.headers).json()["token"]
    exchange.market("60000")
    buy = {"exchange": "simulated", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01"}
    api.post("/v1/orders", json=buy, headers=caller.headers).raise_for_status()
    exchange.execute()
    resting = api.post(
        "/v1/orders", json={**buy, "type": "limit", "limit_price": "50000"}, headers=caller.headers
    ).json()
    exchange.execute()
    (position,) = api.get("/v1/positions", headers=caller.headers).json()["items"]
    channel = api.post("/v1/notification-channels", json=TELEGRAM_CHANNEL, headers=caller.headers)
    channel.raise_for_status()
    return caller, {
        "channel_id": channel.json()["channel"]["id"],
        "strategy_id": bot["strategy_id"],
        "bot_id": bot["id"],
        "credential_id": credential["id"],
        "token_id": token["id"],
        # Nobody's chart: the walk only needs the route to answer (a 404, or a 422 for NUL).
        "chart_id": str(uuid.uuid4()),
        "account_id": resting["account_id"],
        "order_id": resting["id"],
        "position_id": position["position"]["id"],
    }


def _operations(api: httpx.Client) -> list[tuple[str, str, dict[str, Any]]]:
    schema = api.get("/openapi.json").json()
    return [
        (method, path, operation)
        for path, operations in sorted(schema["paths"].items())
        for method, operation in operations.items()
        if method in HTTP_METHODS
    ]


def _request(
    api: httpx.Client, caller: Caller, method: str, path: str, params: dict[str, str], body: Any = None
) -> httpx.Response:
    url = path
    for name, value in params.items():
        url = url.replace("{" + name + "}", _quote(value))
    query = {name: value for name, value in params.items() if "{" + name + "}" not in path}
    content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
    headers = {**caller.headers, "Content-Type": "application/json"}
    return api.request(method.upper(), url, params=query, content=content, headers=headers)


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _parameters(operation: dict[str, Any], world: dict[str, str]) -> dict[str, str]:
    values = {**PARAMETERS, **world}
    params = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] not in ("query", "path"):
            continue
        name = parameter["name"]
        if parameter.get("required") or parameter["in"] == "path":
            assert name in values, f"add a valid value for parameter {name!r} to PARAMETERS"
            params[name] = values[name]
    return params


def test_nul_in_any_query_or_path_parameter_is_a_4xx(api: httpx.Client, exchange: Exchange) -> None:
    caller, world = _world(api, exchange)
    failures = []
    tried = 0
    for method, path, operation in _operations(api):
        if (method, path) == ("post", "/v1/auth/logout"):
            continue
        valid = _parameters(operation, world)
        for parameter in operation.get("parameters", []):
            if parameter["in"] not in ("query", "path"):
                continue
            params = {**valid, parameter["name"]: NUL_TEXT}
            response = _request(api, caller, method, path, params)
            tried += 1
            if not 400 <= response.status_code < 500:
                failures.append(f"{method.upper()} {path} {parameter['name']}: {response.status_code}")

    assert tried >= 30
    assert failures == []


def test_hostile_values_in_every_body_field_are_a_4xx_or_accepted(
    api: httpx.Client, exchange: Exchange
) -> None:
    caller, world = _world(api, exchange)
    bodies = _bodies(world)
    failures = []
    seen = set()
    for method, path, operation in _operations(api):
        if "requestBody" not in operation:
            continue
        seen.add((method, path))
        assert (method, path) in bodies, f"{method.upper()} {path}: add a valid body to _bodies"
        params = _parameters(operation, world)
        for body in bodies[(method, path)]:
            for leaf in _leaves(body):
                for value in (NUL_TEXT, *DECIMAL_EXTREMES):
                    response = _request(api, caller, method, path, params, _replaced(body, leaf, value))
                    if response.status_code >= 500:
                        failures.append(f"{method.upper()} {path} {'.'.join(map(str, leaf))}={value!r:.40}")

    assert set(bodies) <= seen
    assert failures == []
