"""/v1/bots over HTTP: create and validate, lifecycle with history, live-mode rules, stop-all."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.api.auth_support import settings as settings
from tests.integration.api.trading_support import (
    create_bot,
    create_credential,
    create_strategy,
    new_user,
    read_only,
    verified_credential,
)
from tests.unit.strategies.examples import DCA


def test_a_new_bot_is_a_stopped_paper_bot_on_its_strategys_timeframe(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice)

    response = api.post(
        "/v1/bots",
        json={"name": "b1", "strategy_id": strategy["id"], "exchange": "binance", "symbol": " btc/usdt "},
        headers=alice.headers,
    )

    assert response.status_code == 201, response.text
    bot = response.json()
    assert (bot["status"], bot["mode"], bot["symbol"], bot["timeframe"], bot["version"]) == (
        "stopped",
        "paper",
        "BTC/USDT",
        "1m",
        1,
    )
    assert bot["risk"]["max_position_notional"] == "1000"
    assert response.headers["ETag"] == '"1"'
    detail = api.get(f"/v1/bots/{bot['id']}", headers=alice.headers).json()
    assert detail == {**bot, "health": detail["health"]}
    assert detail["health"] == {
        "strategy_version": None,
        "last_evaluation_at": None,
        "last_candle_open_time": None,
        "next_evaluation_at": None,
        "consecutive_skips": 0,
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"exchange": "nyse"}, "exchange"),
        ({"symbol": "BTCUSDT"}, "symbol"),
        ({"timeframe": "2m"}, "timeframe"),
        ({"timeframe": "1h"}, "timeframe"),
        ({"mode": "yolo"}, "mode"),
        ({"risk": {"risk_per_trade_pct": "-1"}}, "risk.risk_per_trade_pct"),
        ({"strategy_id": "00000000-0000-4000-8000-000000000000"}, "strategy_id"),
    ],
)
def test_invalid_bot_settings_are_422_naming_the_field(api: httpx.Client, change: dict, field: str) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice)
    body = {
        "name": "b",
        "strategy_id": strategy["id"],
        "exchange": "simulated",
        "symbol": "BTC/USDT",
        **change,
    }

    response = api.post("/v1/bots", json=body, headers=alice.headers)

    assert response.status_code == 422, response.text
    assert response.json()["detail"]["field"] == field


def test_another_users_strategy_cannot_be_bound_to_a_bot(api: httpx.Client) -> None:
    alice, bob = new_user(api), new_user(api)
    alices_strategy = create_strategy(api, alice)

    response = api.post(
        "/v1/bots",
        json={
            "name": "b",
            "strategy_id": alices_strategy["id"],
            "exchange": "simulated",
            "symbol": "BTC/USDT",
        },
        headers=bob.headers,
    )

    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "strategy_id"


def test_the_lifecycle_is_recorded_in_the_status_history_and_the_activity_feed(api: httpx.Client) -> None:
    alice = new_user(api)
    bot = create_bot(api, alice)
    url = f"/v1/bots/{bot['id']}"

    started = api.post(f"{url}/start", headers=alice.headers)
    paused = api.post(f"{url}/pause", json={"reason": "news"}, headers=alice.headers)
    resumed = api.post(f"{url}/start", headers=alice.headers)
    stopped = api.post(f"{url}/stop", headers=alice.headers)

    assert [r.json()["status"] for r in (started, paused, resumed, stopped)] == [
        "running",
        "paused",
        "running",
        "stopped",
    ]
    history = api.get(f"{url}/status-history", headers=alice.headers).json()["items"]
    assert [(h["from_status"], h["to_status"], h["action"], h["actor"]) for h in history] == [
        ("running", "stopped", "stop", "user"),
        ("paused", "running", "start", "user"),
        ("running", "paused", "pause", "user"),
        ("stopped", "running", "start", "user"),
    ]
    assert history[2]["reason"] == "news"
    activity = api.get("/v1/activity", params={"bot_id": bot["id"]}, headers=alice.headers).json()["items"]
    assert [a["level"] for a in activity] == ["info", "success", "warning", "success", "info"]
    assert activity[2]["message"] == f"Bot {bot['name']} paused: news"


def test_an_illegal_transition_is_409_and_changes_nothing(api: httpx.Client) -> None:
    alice = new_user(api)
    bot = create_bot(api, alice)

    response = api.post(f"/v1/bots/{bot['id']}/pause", headers=alice.headers)

    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail["code"] == "ILLEGAL_BOT_TRANSITION"
    assert detail["message"] == "cannot pause a bot that is stopped (allowed: start)"
    assert api.get(f"/v1/bots/{bot['id']}/status-history", headers=alice.headers).json()["items"] == []
    assert api.get(f"/v1/bots/{bot['id']}", headers=alice.headers).json()["version"] == 1


def test_a_bot_cannot_start_while_its_strategy_is_disabled(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice, enabled=False)
    bot = create_bot(api, alice, strategy["id"])

    response = api.post(f"/v1/bots/{bot['id']}/start", headers=alice.headers)

    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "STRATEGY_DISABLED"
    assert api.get(f"/v1/bots/{bot['id']}", headers=alice.headers).json()["status"] == "stopped"


def test_stop_all_stops_every_active_bot_of_the_caller_only(api: httpx.Client) -> None:
    alice, bob = new_user(api), new_user(api)
    running = create_bot(api, alice)
    paused = create_bot(api, alice)
    idle = create_bot(api, alice)
    bobs = create_bot(api, bob)
    for bot, caller in ((running, alice), (paused, alice), (bobs, bob)):
        api.post(f"/v1/bots/{bot['id']}/start", headers=caller.headers)
    api.post(f"/v1/bots/{paused['id']}/pause", headers=alice.headers)

    response = api.post("/v1/bots/stop-all", headers=alice.headers)

    assert response.status_code == 200, response.text
    assert sorted(b["id"] for b in response.json()["stopped"]) == sorted([running["id"], paused["id"]])
    statuses = {b["id"]: b["status"] for b in api.get("/v1/bots", headers=alice.headers).json()["items"]}
    assert statuses == {running["id"]: "stopped", paused["id"]: "stopped", idle["id"]: "stopped"}
    assert api.get(f"/v1/bots/{bobs['id']}", headers=bob.headers).json()["status"] == "running"
    history = api.get(f"/v1/bots/{running['id']}/status-history", headers=alice.headers).json()["items"]
    assert (history[0]["to_status"], history[0]["reason"]) == ("stopped", "stop-all")


def test_update_with_if_match_and_market_changes_only_while_stopped(api: httpx.Client) -> None:
    alice = new_user(api)
    bot = create_bot(api, alice)
    url = f"/v1/bots/{bot['id']}"
    started = api.post(f"{url}/start", headers=alice.headers)
    version = started.json()["version"]

    rename = api.patch(url, json={"name": "renamed"}, headers={**alice.headers, "If-Match": f'"{version}"'})
    move = api.patch(url, json={"symbol": "ETH/USDT", "version": version + 1}, headers=alice.headers)
    stale = api.patch(url, json={"name": "x"}, headers={**alice.headers, "If-Match": f'"{version}"'})
    missing = api.patch(url, json={"name": "x"}, headers=alice.headers)

    assert rename.status_code == 200
    assert rename.json()["name"] == "renamed"
    assert move.status_code == 409
    assert move.json()["detail"]["code"] == "BOT_ACTIVE"
    assert stale.status_code == 412
    assert missing.status_code == 428
    assert api.get(url, headers=alice.headers).json()["symbol"] == "BTC/USDT"


def test_a_running_bot_cannot_be_deleted_but_a_stopped_one_can(api: httpx.Client) -> None:
    alice = new_user(api)
    bot = create_bot(api, alice)
    url = f"/v1/bots/{bot['id']}"
    api.post(f"{url}/start", headers=alice.headers)

    refused = api.delete(url, headers=alice.headers)
    api.post(f"{url}/stop", headers=alice.headers)
    deleted = api.delete(url, headers=alice.headers)

    assert refused.status_code == 409
    assert deleted.status_code == 204
    assert api.get(url, headers=alice.headers).status_code == 404


def test_idempotent_bot_creation_replays(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice)
    body = {"name": "idem", "strategy_id": strategy["id"], "exchange": "simulated", "symbol": "ETH/USDT"}
    headers = {**alice.headers, "Idempotency-Key": "bot-1"}

    first = api.post("/v1/bots", json=body, headers=headers)
    replay = api.post("/v1/bots", json=body, headers=headers)
    other = api.post("/v1/bots", json={**body, "symbol": "SOL/USDT"}, headers=headers)

    assert first.status_code == replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    assert other.status_code == 422
    assert len(api.get("/v1/bots", headers=alice.headers).json()["items"]) == 1


def test_a_read_only_token_cannot_start_a_bot(api: httpx.Client) -> None:
    alice = new_user(api)
    bot = create_bot(api, alice)

    response = api.post(f"/v1/bots/{bot['id']}/start", headers=read_only(api, alice))

    assert response.status_code == 403
    assert api.get(f"/v1/bots/{bot['id']}", headers=alice.headers).json()["status"] == "stopped"


# --- live mode ---------------------------------------------------------------------------------


def _live_body(strategy_id: str, credential_id: str | None, **extra: object) -> dict:
    return {
        "name": "live",
        "strategy_id": strategy_id,
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "mode": "live",
        "credential_id": credential_id,
        **extra,
    }


def test_live_mode_needs_a_verified_credential_and_explicit_confirmation(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice)
    unverified = create_credential(api, alice)
    verified = verified_credential(api, alice)

    no_credential = api.post(
        "/v1/bots", json=_live_body(strategy["id"], None, confirm_live=True), headers=alice.headers
    )
    not_verified = api.post(
        "/v1/bots",
        json=_live_body(strategy["id"], unverified["id"], confirm_live=True),
        headers=alice.headers,
    )
    unconfirmed = api.post("/v1/bots", json=_live_body(strategy["id"], verified["id"]), headers=alice.headers)
    confirmed = api.post(
        "/v1/bots", json=_live_body(strategy["id"], verified["id"], confirm_live=True), headers=alice.headers
    )

    assert (no_credential.status_code, no_credential.json()["detail"]["field"]) == (422, "credential_id")
    assert (not_verified.status_code, not_verified.json()["detail"]["field"]) == (422, "credential_id")
    assert (unconfirmed.status_code, unconfirmed.json()["detail"]["field"]) == (422, "confirm_live")
    assert confirmed.status_code == 201, confirmed.text
    assert confirmed.json()["mode"] == "live"
    assert confirmed.json()["live_confirmed_at"] is not None


def test_live_mode_needs_a_credential_of_the_same_exchange_owned_by_the_caller(api: httpx.Client) -> None:
    alice, bob = new_user(api), new_user(api)
    strategy = create_strategy(api, alice)
    kraken = verified_credential(api, alice, exchange="kraken")
    bobs = verified_credential(api, bob)

    wrong_exchange = api.post(
        "/v1/bots", json=_live_body(strategy["id"], kraken["id"], confirm_live=True), headers=alice.headers
    )
    someone_elses = api.post(
        "/v1/bots", json=_live_body(strategy["id"], bobs["id"], confirm_live=True), headers=alice.headers
    )

    assert (wrong_exchange.status_code, wrong_exchange.json()["detail"]["field"]) == (422, "credential_id")
    assert (someone_elses.status_code, someone_elses.json()["detail"]["field"]) == (422, "credential_id")


def test_switching_a_paper_bot_to_live_needs_confirmation(api: httpx.Client) -> None:
    alice = new_user(api)
    credential = verified_credential(api, alice)
    bot = create_bot(api, alice, exchange="binance", credential_id=credential["id"])
    url = f"/v1/bots/{bot['id']}"

    unconfirmed = api.patch(url, json={"mode": "live", "version": 1}, headers=alice.headers)
    confirmed = api.patch(
        url, json={"mode": "live", "confirm_live": True, "version": 1}, headers=alice.headers
    )
    back_to_paper = api.patch(url, json={"mode": "paper", "version": 2}, headers=alice.headers)

    assert (unconfirmed.status_code, unconfirmed.json()["detail"]["field"]) == (422, "confirm_live")
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["mode"] == "live"
    assert back_to_paper.json()["live_confirmed_at"] is None


def test_the_simulated_exchange_cannot_trade_live(api: httpx.Client) -> None:
    alice = new_user(api)
    strategy = create_strategy(api, alice)
    credential = verified_credential(api, alice, exchange="simulated")

    response = api.post(
        "/v1/bots",
        json={**_live_body(strategy["id"], credential["id"], confirm_live=True), "exchange": "simulated"},
        headers=alice.headers,
    )

    assert (response.status_code, response.json()["detail"]["field"]) == (422, "exchange")


def test_a_credential_used_by_a_bot_cannot_be_deleted(api: httpx.Client) -> None:
    alice = new_user(api)
    credential = verified_credential(api, alice)
    create_bot(api, alice, exchange="binance", credential_id=credential["id"])

    response = api.delete(f"/v1/broker-credentials/{credential['id']}", headers=alice.headers)

    assert response.status_code == 409
    assert response.json()["detail"]["code"] == "RESOURCE_IN_USE"


def test_concurrent_starts_of_one_bot_start_it_exactly_once(api: httpx.Client) -> None:
    alice = new_user(api)
    bot = create_bot(api, alice)

    def start(_: int) -> int:
        with httpx.Client(base_url=api.base_url, timeout=10) as client:
            return client.post(f"/v1/bots/{bot['id']}/start", headers=alice.headers).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(start, range(8)))

    assert statuses == [200] + [409] * 7
    history = api.get(f"/v1/bots/{bot['id']}/status-history", headers=alice.headers).json()["items"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [("stopped", "running")]


def test_moving_a_stopped_bot_to_another_strategy_takes_its_timeframe(api: httpx.Client) -> None:
    alice = new_user(api)
    bot = create_bot(api, alice)
    hourly = create_strategy(api, alice, definition={"kind": "builtin", "bot_type": "dca", "params": DCA})

    response = api.patch(
        f"/v1/bots/{bot['id']}", json={"strategy_id": hourly["id"], "version": 1}, headers=alice.headers
    )

    assert response.status_code == 200, response.text
    assert (response.json()["strategy_id"], response.json()["timeframe"]) == (hourly["id"], "1h")
