"""The trading API over HTTP, with the executor draining the order queue behind it: manual
orders that fill, rest and are cancelled, balances and positions with their P&L, trades and
statistics, account resets, careless input answered with clear 4xx, and bots with orders kept."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from tekoa.db.connection import service_transaction, tenant_transaction
from tekoa.execution.messages import TriggerMessage
from tests.integration.api.auth_support import settings as settings
from tests.integration.api.execution_support import Exchange
from tests.integration.api.execution_support import exchange as exchange
from tests.integration.api.trading_support import Caller, create_bot, new_user

MARKET_BUY = {"exchange": "simulated", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01"}


def place(api: httpx.Client, caller: Caller, **fields: Any) -> httpx.Response:
    return api.post("/v1/orders", json={**MARKET_BUY, **fields}, headers=caller.headers)


def balances(api: httpx.Client, caller: Caller) -> dict[str, dict[str, str]]:
    (account,) = api.get("/v1/accounts", headers=caller.headers).json()
    return {b["asset"]: b for b in account["balances"]}


def test_a_manual_paper_market_order_fills_and_shows_in_balances_and_positions(
    api: httpx.Client, exchange: Exchange
) -> None:
    alice = new_user(api)
    exchange.market("60000")

    placed = place(api, alice)

    assert placed.status_code == 202, placed.text
    order = placed.json()
    assert (order["status"], order["held_asset"]) == ("new", "USDT")
    assert isinstance(order["created_at"], int)
    assert exchange.execute() == 1
    detail = api.get(f"/v1/orders/{order['id']}", headers=alice.headers).json()
    assert (detail["order"]["status"], detail["order"]["average_price"]) == ("filled", "60030")
    assert [e["kind"] for e in detail["events"]] == ["created", "fill"]
    (fill,) = detail["fills"]
    assert (fill["quantity"], fill["price"], fill["fee"], fill["liquidity"]) == (
        "0.01",
        "60030",
        "0.6003",
        "taker",
    )
    assert balances(api, alice)["BTC"] == {"asset": "BTC", "available": "0.01", "held": "0"}
    exchange.market("61000")
    (position,) = api.get("/v1/positions?state=open", headers=alice.headers).json()["items"]
    assert position["position"]["quantity"] == "0.01"
    assert Decimal(position["unrealized_pnl"]) == Decimal("0.01") * (Decimal(61000) - Decimal("60030.00"))


def test_a_limit_order_rests_then_fills_when_the_market_trades_through_it(
    api: httpx.Client, exchange: Exchange
) -> None:
    alice = new_user(api)
    exchange.market("60000")
    order = place(api, alice, type="limit", limit_price="59000", quantity="0.1").json()
    exchange.execute()
    resting = api.get(f"/v1/orders/{order['id']}", headers=alice.headers).json()["order"]
    assert resting["status"] == "open"
    assert balances(api, alice)["USDT"]["held"] == "5905.9"

    # The market stream sees a trade at 58 990 and sends the trigger.
    exchange.queue.queue.send(
        [
            TriggerMessage(
                user_id=alice.user_id,
                account_id=resting["account_id"],
                order_id=resting["id"],
                client_order_id=resting["client_order_id"],
                trade_id="77",
                trade_time=1,
                price=Decimal("58990"),
                enqueued_at=1,
            )
        ]
    )
    exchange.execute()

    filled = api.get(f"/v1/orders/{order['id']}", headers=alice.headers).json()["order"]
    assert (filled["status"], filled["average_price"]) == ("filled", "59000")
    assert balances(api, alice)["USDT"]["held"] == "0"


def test_a_round_trip_becomes_a_trade_with_statistics(api: httpx.Client, exchange: Exchange) -> None:
    alice = new_user(api)
    exchange.market("60000")
    place(api, alice)
    exchange.execute()
    exchange.market("62000")
    (position,) = api.get("/v1/positions", headers=alice.headers).json()["items"]

    closing = api.post(f"/v1/positions/{position['position']['id']}/close", headers=alice.headers)
    exchange.execute()

    assert closing.status_code == 202, closing.text
    (trade,) = api.get("/v1/trades", headers=alice.headers).json()["items"]
    expected = (
        Decimal("0.01") * (Decimal("61969.00") - Decimal("60030.00"))
        - Decimal("0.60030000")
        - Decimal("0.61969000")
    )
    assert Decimal(trade["pnl"]) == expected
    overall = api.get("/v1/trades/stats/overall", headers=alice.headers).json()
    assert (overall["total"]["trades"], overall["total"]["wins"], overall["total"]["win_rate"]) == (1, 1, "1")
    assert overall["by_bot"] == [{"bot_id": None, "stats": overall["total"]}]
    (day,) = api.get("/v1/trades/stats/daily", headers=alice.headers).json()
    assert day["stats"]["pnl"] == overall["total"]["pnl"]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"quantity": "-1"}, 422, "VALIDATION_ERROR", "quantity"),
        ({"quantity": "NaN"}, 422, "VALIDATION_ERROR", "quantity"),
        ({"quantity": "1E-999999999"}, 422, "VALIDATION_ERROR", "quantity"),
        ({"symbol": "FOO/BAR"}, 422, "INVALID_ORDER", "symbol"),
        ({"symbol": "BTCUSDT"}, 422, "VALIDATION_ERROR", "symbol"),
        ({"quantity": "0.00001"}, 422, "INVALID_ORDER", "quantity"),  # 0.60 USDT: below the 5 USDT minimum
        ({"quantity": "0.0012345"}, 422, "INVALID_ORDER", "quantity"),  # finer than the 0.00001 lot
        ({"quantity": "1"}, 422, "INSUFFICIENT_BALANCE", "quantity"),
        ({"side": "sell"}, 422, "NO_POSITION", "quantity"),
        ({"type": "limit"}, 422, "VALIDATION_ERROR", None),
        ({"type": "limit", "limit_price": "59000.001"}, 422, "INVALID_ORDER", "limit_price"),
        ({"mode": "live"}, 422, "VALIDATION_ERROR", "mode"),
        ({"exchange": "nyse"}, 422, "VALIDATION_ERROR", "exchange"),
    ],
)
def test_careless_orders_are_refused_with_a_clear_4xx_and_nothing_is_stored(
    api: httpx.Client, exchange: Exchange, change: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    alice = new_user(api)
    exchange.market("60000")

    response = place(api, alice, **change)

    assert response.status_code == status, response.text
    assert response.json()["detail"]["code"] == code
    if field is not None:
        assert response.json()["detail"]["field"] == field
    assert api.get("/v1/orders", headers=alice.headers).json()["items"] == []


def test_a_market_order_on_a_market_without_a_fresh_price_is_refused(
    api: httpx.Client, exchange: Exchange
) -> None:
    alice = new_user(api)
    exchange.market("60000")
    with exchange.database.connection() as conn:
        conn.execute("UPDATE market_last_trades SET trade_time = trade_time - 3600000")

    response = place(api, alice)

    assert (response.status_code, response.json()["detail"]["code"]) == (422, "STALE_PRICE")


def test_the_same_idempotency_key_places_one_order(api: httpx.Client, exchange: Exchange) -> None:
    alice = new_user(api)
    exchange.market("60000")
    headers = {**alice.headers, "Idempotency-Key": "buy-once"}

    first = api.post("/v1/orders", json=MARKET_BUY, headers=headers)
    again = api.post("/v1/orders", json=MARKET_BUY, headers=headers)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == again.json()["id"]
    assert len(api.get("/v1/orders", headers=alice.headers).json()["items"]) == 1


def test_a_client_order_id_is_used_once_per_account(api: httpx.Client, exchange: Exchange) -> None:
    alice = new_user(api)
    exchange.market("60000")

    assert place(api, alice, client_order_id="my-order-1").status_code == 202
    response = place(api, alice, client_order_id="my-order-1")

    assert (response.status_code, response.json()["detail"]["code"]) == (409, "CLIENT_ORDER_ID_TAKEN")


def test_a_resting_order_can_be_cancelled_once(api: httpx.Client, exchange: Exchange) -> None:
    alice = new_user(api)
    exchange.market("60000")
    order = place(api, alice, type="limit", limit_price="50000").json()
    exchange.execute()

    cancelled = api.post(
        f"/v1/orders/{order['id']}/cancel", json={"reason": "changed my mind"}, headers=alice.headers
    )
    exchange.execute()
    again = api.post(f"/v1/orders/{order['id']}/cancel", headers=alice.headers)

    assert cancelled.status_code == 202
    final = api.get(f"/v1/orders/{order['id']}", headers=alice.headers).json()["order"]
    assert (final["status"], final["reason"]) == ("canceled", "changed my mind")
    assert (again.status_code, again.json()["detail"]["code"]) == (409, "ILLEGAL_ORDER_TRANSITION")
    assert balances(api, alice)["USDT"] == {"asset": "USDT", "available": "10000", "held": "0"}


def test_a_paper_account_opens_with_your_balance_and_resets_only_when_you_confirm(
    api: httpx.Client, exchange: Exchange
) -> None:
    alice = new_user(api)
    exchange.market("60000")
    opened = api.post(
        "/v1/accounts", json={"exchange": "simulated", "starting_balance": "2500"}, headers=alice.headers
    )
    assert opened.status_code == 201, opened.text
    account_id = opened.json()["account"]["id"]
    assert api.post("/v1/accounts", json={"exchange": "simulated"}, headers=alice.headers).status_code == 409
    place(api, alice)
    exchange.execute()

    unconfirmed = api.post(f"/v1/accounts/{account_id}/reset", json={}, headers=alice.headers)
    reset = api.post(f"/v1/accounts/{account_id}/reset", json={"confirm": True}, headers=alice.headers)

    assert (unconfirmed.status_code, unconfirmed.json()["detail"]["field"]) == (422, "confirm")
    assert reset.status_code == 200, reset.text
    assert reset.json()["account"]["resets"] == 1
    assert {b["asset"]: b["available"] for b in reset.json()["balances"]} == {"BTC": "0", "USDT": "2500"}
    assert api.get("/v1/positions?state=open", headers=alice.headers).json()["items"] == []
    check = api.get(f"/v1/accounts/{account_id}/ledger-check", headers=alice.headers).json()
    assert check == {"consistent": True, "problems": []}


def test_a_bot_with_orders_is_archived_not_deleted(api: httpx.Client, exchange: Exchange) -> None:
    from tekoa.db.connection import tenant_transaction
    from tekoa.db.order_context import load_order_context
    from tekoa.db.orders import new_order
    from tekoa.domain.orders import OrderSide, OrderType
    from tekoa.execution import booking
    from tekoa.execution.writes import Writes

    alice = new_user(api)
    bot = create_bot(api, alice)
    exchange.market("60000")
    account = api.post("/v1/accounts", json={"exchange": "simulated"}, headers=alice.headers).json()[
        "account"
    ]
    with (
        exchange.database.connection() as conn,
        tenant_transaction(conn, alice.user_id),
    ):  # the bot's first order
        context = load_order_context(conn, alice.user_id, account["id"], client_order_id="tkbotorder")
        assert context is not None
        writes = Writes()
        booking.claim(
            writes,
            alice.user_id,
            context.account,
            new_order(
                context.account.id,
                bot_id=bot["id"],
                client_order_id="tkbotorder",
                exchange="simulated",
                symbol="BTC/USDT",
                side=OrderSide.BUY,
                type=OrderType.LIMIT,
                quantity=Decimal("0.001"),
                limit_price=Decimal(50000),
                stop_price=None,
                reduce_only=False,
                intent={},
            ),
            hold_asset=None,
            hold_amount=Decimal(0),
            source="bot",
        )
        writes.flush(conn)

    deleted = api.delete(f"/v1/bots/{bot['id']}", headers=alice.headers)

    assert deleted.status_code == 204
    assert api.get("/v1/bots", headers=alice.headers).json()["items"] == []
    archived = api.get("/v1/bots?archived=true", headers=alice.headers).json()["items"]
    assert [b["id"] for b in archived] == [bot["id"]] and archived[0]["archived_at"] is not None
    started = api.post(f"/v1/bots/{bot['id']}/start", headers=alice.headers)
    assert (started.status_code, started.json()["detail"]["code"]) == (409, "BOT_ARCHIVED")
    assert create_bot(api, alice, name=bot["name"])["name"] == bot["name"]  # the name is free again


TRADING_TABLES = (
    "accounts",
    "balances",
    "ledger_entries",
    "orders",
    "order_events",
    "fills",
    "positions",
    "event_outbox",
)


def test_rls_hides_other_tenants_trading_rows_and_keeps_histories_append_only(
    api: httpx.Client, exchange: Exchange, settings: Any
) -> None:
    alice, bob = new_user(api), new_user(api)
    exchange.market("60000")
    for caller in (alice, bob):
        place(api, caller)
    exchange.execute()

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        with service_transaction(conn):
            conn.execute(
                "INSERT INTO event_outbox (id, user_id, detail_type, detail)"
                " SELECT gen_random_uuid(), u, 'order.filled', '{}' FROM unnest(%s::uuid[]) AS u",
                ([alice.user_id, bob.user_id],),
            )
        for table in TRADING_TABLES:
            with tenant_transaction(conn, alice.user_id):
                owners = {
                    row[0] for row in conn.execute(f"SELECT user_id FROM {table}")
                }  # no WHERE on purpose
            with service_transaction(conn):
                everyone = {row[0] for row in conn.execute(f"SELECT user_id FROM {table}")}
            assert (owners, everyone) == ({alice.user_id}, {alice.user_id, bob.user_id}), table
        for table in ("ledger_entries", "order_events", "fills"):
            for statement in (f"DELETE FROM {table}", f"UPDATE {table} SET user_id = user_id"):
                with (
                    pytest.raises(psycopg.errors.InsufficientPrivilege),
                    tenant_transaction(conn, alice.user_id),
                ):
                    conn.execute(statement)
