"""The risk API and the bot endpoints of issue 10 over HTTP: a user's risk with the kill switch
and the reset (another user untouched), careless limits, unknown symbols, force-entry and
force-exit on paper, evaluations and performance of a bot."""

from __future__ import annotations

import httpx

from tests.integration.api.auth_support import settings as settings
from tests.integration.api.execution_support import Exchange
from tests.integration.api.execution_support import exchange as exchange
from tests.integration.api.trading_support import create_bot, create_strategy, new_user


def test_a_kill_switch_halts_its_user_only_cancels_resting_orders_and_a_reset_lifts_it(
    api: httpx.Client, exchange: Exchange
) -> None:
    alice, bob = new_user(api), new_user(api)
    exchange.market("60000")
    resting = api.post(
        "/v1/orders",
        json={
            "exchange": "simulated",
            "symbol": "BTC/USDT",
            "side": "buy",
            "type": "limit",
            "quantity": "0.01",
            "limit_price": "50000",
        },
        headers=alice.headers,
    )
    assert resting.status_code == 202, resting.text
    exchange.execute()

    killed = api.post("/v1/risk/kill-switch", json={"reason": "going on holiday"}, headers=alice.headers)

    assert killed.status_code == 200, killed.text
    assert killed.json()["canceled_orders"] == 1
    risk = api.get("/v1/risk", headers=alice.headers).json()
    assert (risk["state"], risk["trip"], risk["reason"]) == (
        "halted",
        "kill_switch",
        "kill switch: going on holiday",
    )
    assert (
        api.get(f"/v1/orders/{resting.json()['id']}", headers=alice.headers).json()["order"]["status"]
        == "canceled"
    )
    assert api.get("/v1/risk", headers=bob.headers).json()["state"] == "active"
    refused = api.post(
        "/v1/orders",
        json={"exchange": "simulated", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01"},
        headers=alice.headers,
    )
    assert refused.status_code == 422 and refused.json()["detail"]["code"] == "TRADING_HALTED"
    reset = api.post("/v1/risk/reset", headers=alice.headers)
    assert reset.status_code == 200 and reset.json()["state"] == "active"
    assert reset.json()["equity"] == "10000" and reset.json()["drawdown_pct"] == "0"


def test_careless_limits_are_a_422_naming_the_field_and_change_nothing(api: httpx.Client) -> None:
    alice = new_user(api)
    before = api.get("/v1/risk", headers=alice.headers).json()

    nested = api.put(
        "/v1/risk/limits",
        json={"daily_loss_limit": {"type": "pct", "pct": "30"}, "max_drawdown_pct": "20"},
        headers=alice.headers,
    )
    negative = api.put("/v1/risk/limits", json={"max_open_positions": -1}, headers=alice.headers)

    assert nested.status_code == 422 and "max_drawdown_pct" in nested.json()["detail"]["message"]
    assert negative.status_code == 422 and negative.json()["detail"]["field"] == "max_open_positions"
    assert api.get("/v1/risk", headers=alice.headers).json() == before
    changed = api.put("/v1/risk/limits", json={"max_open_positions": 2}, headers=alice.headers)
    assert changed.status_code == 200 and changed.json()["limits"]["max_open_positions"] == 2


def test_a_bot_on_a_symbol_the_exchange_does_not_list_is_refused_at_create(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice)

    response = api.post(
        "/v1/bots",
        json={"name": "nowhere", "strategy_id": strategy["id"], "exchange": "simulated", "symbol": "FOO/BAR"},
        headers=alice.headers,
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"]["field"] == "symbol"
    assert "does not list FOO/BAR" in response.json()["detail"]["message"]


def test_force_entry_and_force_exit_trade_for_the_bot_and_show_in_its_performance(
    api: httpx.Client, exchange: Exchange
) -> None:
    alice = new_user(api)
    bot = create_bot(api, alice)
    exchange.market("60000")

    entered = api.post(
        f"/v1/bots/{bot['id']}/force-entry", json={"quote_amount": "600"}, headers=alice.headers
    )
    exchange.execute()
    exchange.market("61000")
    performance = api.get(f"/v1/bots/{bot['id']}/performance", headers=alice.headers).json()
    exited = api.post(f"/v1/bots/{bot['id']}/force-exit", headers=alice.headers)
    exchange.execute()
    again = api.post(f"/v1/bots/{bot['id']}/force-exit", headers=alice.headers)
    after = api.get(f"/v1/bots/{bot['id']}/performance", headers=alice.headers).json()

    assert entered.status_code == 202, entered.text
    assert entered.json()["quantity"] == "0.01"
    assert performance["open_position_quantity"] == "0.01" and float(performance["unrealized_pnl"]) > 0
    assert exited.status_code == 202 and len(exited.json()) == 1
    assert again.status_code == 409
    assert (after["trades"], after["wins"], after["open_position_quantity"]) == (1, 1, "0")
    assert api.get(f"/v1/bots/{bot['id']}/evaluations", headers=alice.headers).json() == {
        "items": [],
        "next_cursor": None,
    }


def test_a_kill_switch_with_flatten_sells_its_users_positions_through_the_halt(
    api: httpx.Client, exchange: Exchange
) -> None:
    alice, bob = new_user(api), new_user(api)
    exchange.market("60000")
    for user in (alice, bob):
        bought = api.post(
            "/v1/orders",
            json={"exchange": "simulated", "symbol": "BTC/USDT", "side": "buy", "quantity": "0.01"},
            headers=user.headers,
        )
        assert bought.status_code == 202, bought.text
    exchange.execute()

    careless = api.post("/v1/risk/kill-switch", json={"flatten": "sometimes"}, headers=alice.headers)
    killed = api.post("/v1/risk/kill-switch", json={"flatten": True}, headers=alice.headers)
    exchange.execute()

    assert careless.status_code == 422 and careless.json()["detail"]["field"] == "flatten"
    assert killed.status_code == 200, killed.text
    assert (killed.json()["flattening_orders"], killed.json()["not_flattened"]) == (1, [])
    assert killed.json()["risk"]["state"] == "halted"
    open_alice = api.get("/v1/positions?state=open", headers=alice.headers).json()["items"]
    open_bob = api.get("/v1/positions?state=open", headers=bob.headers).json()["items"]
    assert open_alice == [] and len(open_bob) == 1
