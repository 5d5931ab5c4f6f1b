"""Tenancy: another user's object id answers 404 on every route that takes one, with no side
effect; and row-level security hides other tenants' rows even from a query with no filter."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import psycopg
import pytest

from tekoa.db.connection import PooledDatabase, service_transaction, tenant_transaction
from tekoa.domain.timeframes import Timeframe
from tests.integration.api.auth_support import settings as settings
from tests.integration.api.execution_support import Exchange
from tests.integration.api.execution_support import exchange as exchange
from tests.integration.api.trading_support import (
    Caller,
    create_bot,
    create_credential,
    create_strategy,
    new_user,
)
from tests.integration.charts.chart_support import store_candles

HTTP_METHODS = ("get", "put", "post", "patch", "delete")
OBJECT_ID = re.compile(r"\{([a-z_]*id)\}")

# Bodies that would be valid for the owner: the route must still refuse the stranger with 404
# (not 422 for the body, not 412/428 for the version). A new id-taking route with a required
# body fails the walk until it gets an entry here.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("patch", "/v1/strategies/{strategy_id}"): {"description": "hijacked", "version": 1},
    ("patch", "/v1/bots/{bot_id}"): {"name": "hijacked", "version": 1},
    ("patch", "/v1/notification-channels/{channel_id}"): {"enabled": False},
    ("put", "/v1/accounts/{account_id}/starting-balance"): {"starting_balance": "1"},
    ("post", "/v1/accounts/{account_id}/reset"): {"confirm": True},
    ("post", "/v1/bots/{bot_id}/force-entry"): {"quote_amount": "100"},
}

TENANT_TABLES = (
    "charts",
    "strategies",
    "strategy_versions",
    "bots",
    "bot_status_changes",
    "broker_credentials",
    "activity",
    "notification_channels",
)


def _id_routes(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, operations in schema["paths"].items()
        if OBJECT_ID.search(path)
        for method in operations
        if method in HTTP_METHODS
    }


def _alices_world(
    api: httpx.Client, alice: Caller, exchange: Exchange, settings: Any
) -> tuple[dict[str, str], str]:
    """One object of every kind an id route can name, owned by alice (and her API token)."""
    exchange.market("60000")
    order = api.post(
        "/v1/orders",
        json={"exchange": "simulated", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01"},
        headers=alice.headers,
    )
    assert order.status_code == 202, order.text
    exchange.execute()
    (position,) = api.get("/v1/positions", headers=alice.headers).json()["items"]
    strategy = create_strategy(api, alice)
    bot = create_bot(api, alice, strategy["id"])
    _store_candles(settings)
    chart = api.post("/v1/charts", json={"bot_id": bot["id"]}, headers=alice.headers)
    assert chart.status_code == 202, chart.text
    credential = create_credential(api, alice, exchange="simulated")
    token = api.post("/v1/api-tokens", json={"name": "script", "scope": "trading"}, headers=alice.headers)
    assert token.status_code == 201, token.text
    channel = _telegram_channel(api, alice)
    ids = {
        "channel_id": channel["id"],
        "strategy_id": strategy["id"],
        "bot_id": bot["id"],
        "credential_id": credential["id"],
        "token_id": token.json()["token"]["id"],
        "chart_id": chart.json()["id"],
        "account_id": order.json()["account_id"],
        "order_id": order.json()["id"],
        "position_id": position["position"]["id"],
    }
    return ids, token.json()["secret"]


def _store_candles(settings: Any) -> None:
    """Candles of the bots' market (simulated BTC/USDT 1m), so charts of it can be asked for."""
    database = PooledDatabase(settings.database_url, max_size=1)
    try:
        store_candles(database, 50, end=int(time.time() * 1000), timeframe=Timeframe.M1)
    finally:
        database.close()


def _telegram_channel(api: httpx.Client, caller: Caller) -> dict[str, Any]:
    body = {
        "kind": "telegram",
        "name": "phone",
        "chat_id": "42",
        "bot_token": "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef",
        "events": ["fills"],
    }
    response = api.post("/v1/notification-channels", json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    channel: dict[str, Any] = response.json()["channel"]
    return channel


def _snapshot(api: httpx.Client, alice: Caller, ids: dict[str, str]) -> dict[str, Any]:
    """Everything alice can read about her objects."""
    reads = [
        f"/v1/strategies/{ids['strategy_id']}",
        f"/v1/strategies/{ids['strategy_id']}/versions",
        f"/v1/bots/{ids['bot_id']}",
        f"/v1/bots/{ids['bot_id']}/status-history",
        f"/v1/broker-credentials/{ids['credential_id']}",
        f"/v1/charts/{ids['chart_id']}",
        f"/v1/accounts/{ids['account_id']}",
        f"/v1/orders/{ids['order_id']}",
        f"/v1/positions/{ids['position_id']}",
        "/v1/orders",
        "/v1/positions",
        "/v1/trades",
        "/v1/api-tokens",
        "/v1/activity",
        "/v1/strategies",
        "/v1/bots",
        "/v1/broker-credentials",
        f"/v1/notification-channels/{ids['channel_id']}",
        "/v1/notification-channels",
    ]
    snapshot = {}
    for url in reads:
        response = api.get(url, headers=alice.headers)
        assert response.status_code == 200, (url, response.text)
        snapshot[url] = response.json()
    return snapshot


def test_every_route_with_an_object_id_answers_404_to_another_user_without_side_effects(
    api: httpx.Client, exchange: Exchange, settings: Any
) -> None:
    schema = api.get("/openapi.json").json()
    routes = _id_routes(schema)
    alice, bob = new_user(api), new_user(api)
    ids, token_secret = _alices_world(api, alice, exchange, settings)
    before = _snapshot(api, alice, ids)
    secret_values = set(ids.values())

    walked: set[tuple[str, str]] = set()
    for method, path in sorted(routes):
        names = OBJECT_ID.findall(path)
        unknown = [name for name in names if name not in ids]
        assert not unknown, f"{method.upper()} {path}: add an object for {unknown} to the tenancy walk"
        operation = schema["paths"][path][method]
        needs_body = operation.get("requestBody", {}).get("required", False)
        assert not needs_body or (method, path) in BODIES, f"{method.upper()} {path}: add a body to BODIES"
        url = path
        for name in names:
            url = url.replace("{" + name + "}", ids[name])

        response = api.request(method.upper(), url, json=BODIES.get((method, path)), headers=bob.headers)

        assert response.status_code == 404, f"{method.upper()} {path}: {response.status_code} {response.text}"
        assert response.json()["detail"]["code"] == "NOT_FOUND"
        leaked = [value for value in secret_values if value in response.text]
        assert not leaked, f"{method.upper()} {path} leaked {leaked}"
        walked.add((method, path))

    assert walked == routes
    assert {path for _, path in walked} >= {
        "/v1/strategies/{strategy_id}",
        "/v1/bots/{bot_id}",
        "/v1/broker-credentials/{credential_id}",
        "/v1/charts/{chart_id}",
        "/v1/bots/{bot_id}/chart",
        "/v1/accounts/{account_id}",
        "/v1/orders/{order_id}",
        "/v1/positions/{position_id}",
    }
    assert _snapshot(api, alice, ids) == before
    assert api.get("/v1/me", headers={"Authorization": f"Bearer {token_secret}"}).status_code == 200


def test_rls_hides_other_tenants_rows_from_an_unfiltered_query(api: httpx.Client, settings: Any) -> None:
    alice, bob = new_user(api), new_user(api)
    _store_candles(settings)
    for caller in (alice, bob):
        bot = create_bot(api, caller)
        api.post(f"/v1/bots/{bot['id']}/start", headers=caller.headers)
        create_credential(api, caller)
        assert api.post("/v1/charts", json={"bot_id": bot["id"]}, headers=caller.headers).status_code == 202
        _telegram_channel(api, caller)

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        for table in TENANT_TABLES:
            with tenant_transaction(conn, alice.user_id):
                owners = {
                    row[0] for row in conn.execute(f"SELECT user_id FROM {table}")
                }  # no WHERE on purpose
            with service_transaction(conn):
                everyone = {row[0] for row in conn.execute(f"SELECT user_id FROM {table}")}
            assert owners == {alice.user_id}, table
            assert everyone == {alice.user_id, bob.user_id}, table


def test_rls_refuses_writing_or_changing_another_tenants_rows(api: httpx.Client, settings: Any) -> None:
    alice, bob = new_user(api), new_user(api)
    bobs_bot = create_bot(api, bob)

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        with tenant_transaction(conn, alice.user_id):
            changed = conn.execute(
                "UPDATE bots SET status = 'running' WHERE id = %s", (bobs_bot["id"],)
            ).rowcount
            deleted = conn.execute("DELETE FROM strategies WHERE user_id = %s", (bob.user_id,)).rowcount
        with pytest.raises(psycopg.errors.InsufficientPrivilege), tenant_transaction(conn, alice.user_id):
            conn.execute(
                "INSERT INTO activity (user_id, level, message) VALUES (%s, 'info', 'forged')", (bob.user_id,)
            )

    assert (changed, deleted) == (0, 0)
    assert api.get(f"/v1/bots/{bobs_bot['id']}", headers=bob.headers).json()["status"] == "stopped"


def test_a_bot_cannot_reference_another_tenants_strategy_even_bypassing_the_service(
    api: httpx.Client, settings: Any
) -> None:
    alice, bob = new_user(api), new_user(api)
    bobs_strategy = create_strategy(api, bob)

    with (
        psycopg.connect(settings.database_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.ForeignKeyViolation),
        tenant_transaction(conn, alice.user_id),
    ):
        conn.execute(
            "INSERT INTO bots (user_id, name, strategy_id, exchange, symbol, timeframe, risk)"
            " VALUES (%s, 'x', %s, 'simulated', 'BTC/USDT', '1m', '{}')",
            (alice.user_id, bobs_strategy["id"]),
        )


def test_every_table_with_an_owner_column_forces_row_level_security(settings: Any) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND n.nspname = 'public'"
        ).fetchall()

    tables = {name for name, _, _ in rows}
    assert set(TENANT_TABLES) <= tables
    assert [name for name, enabled, forced in rows if not (enabled and forced)] == []


@pytest.mark.parametrize("table", ["strategy_versions", "bot_status_changes"])
def test_history_tables_are_append_only_for_the_application(
    api: httpx.Client, settings: Any, table: str
) -> None:
    alice = new_user(api)
    bot = create_bot(api, alice)
    api.post(f"/v1/bots/{bot['id']}/start", headers=alice.headers)

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), tenant_transaction(conn, alice.user_id):
            conn.execute(f"DELETE FROM {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege), tenant_transaction(conn, alice.user_id):
            conn.execute(f"UPDATE {table} SET user_id = user_id")
