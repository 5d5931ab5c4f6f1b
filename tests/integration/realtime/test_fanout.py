"""Fan-out through the local gateway: each event reaches exactly the connections allowed to see
it, gone and ended connections are forgotten, and bot status changes reach the bus rule."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import psycopg

from tekoa.aws.push import ManagementApiPusher
from tekoa.bus_rules import PUSH
from tekoa.db.connection import PooledDatabase
from tekoa.local.bus import rule_target
from tekoa.names import EventType
from tekoa.realtime.fanout import FanOut
from tests.integration.api.auth_support import settings as settings
from tests.integration.api.trading_support import create_bot, new_user
from tests.integration.realtime.realtime_support import Gateway, connect, receive_json, request
from tests.integration.realtime.realtime_support import gateway as gateway

MARKET = {"exchange": "simulated", "symbol": "BTC/USDT"}


def _token(caller: Any) -> str:
    return str(caller.headers["Authorization"].removeprefix("Bearer "))


def _fan_out(gateway: Gateway, settings: Any) -> FanOut:
    return FanOut(
        PooledDatabase(settings.database_url, max_size=2),
        ManagementApiPusher.from_boto3(gateway.url, "us-east-1"),
    )


def _candle() -> dict[str, Any]:
    return {
        "exchange": "simulated",
        "symbol": "BTC/USDT",
        "timeframe": "1m",
        "open_time": 1_700_000_040_000,
        "close_time": 1_700_000_099_999,
        "open": "100",
        "high": "101",
        "low": "99",
        "close": "100.5",
        "volume": "3",
        "trades": 7,
    }


def _fill(user_id: Any, bot_id: str | None) -> dict[str, Any]:
    return {"user_id": str(user_id), "bot_id": bot_id, "order_id": str(uuid.uuid4()), "status": "filled"}


async def _nothing_more(socket: Any, within_s: float = 0.5) -> bool:
    try:
        message = await asyncio.wait_for(socket.recv(), within_s)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected message: {message}")


def test_market_events_reach_subscribers_and_a_users_events_reach_only_that_user(
    api: httpx.Client, gateway: Gateway, settings: Any
) -> None:
    alice, bob = new_user(api), new_user(api)
    alices_bot, other_bot = create_bot(api, alice), create_bot(api, alice)
    fan_out = _fan_out(gateway, settings)

    async def scenario() -> None:
        async with connect(gateway, _token(alice)) as mine, connect(gateway, _token(bob)) as theirs:
            assert (
                await request(mine, {"action": "subscribe", "markets": [MARKET], "bots": [alices_bot["id"]]})
            )["type"] == "subscribed"
            assert (await request(theirs, {"action": "subscribe", "markets": [MARKET], "bots": ["*"]}))[
                "type"
            ] == "subscribed"

            report = await asyncio.to_thread(fan_out.event, EventType.CANDLE_CLOSED, _candle())
            assert report.delivered == 2
            for socket in (mine, theirs):
                update = await receive_json(socket)
                assert update["type"] == "candle_update" and isinstance(update["ts"], int)
                assert update["data"] == {**_candle(), "closed": True}

            # Alice's bot fills: only her connection hears it, and without her user id.
            report = await asyncio.to_thread(
                fan_out.event, EventType.ORDER_FILLED, _fill(alice.user_id, alices_bot["id"])
            )
            assert report.delivered == 1
            trade = await receive_json(mine)
            assert trade["type"] == "trade_executed" and trade["data"]["bot_id"] == alices_bot["id"]
            assert "user_id" not in trade["data"]

            # Her other bot (not subscribed) and a manual order (no bot: every connection of hers).
            await asyncio.to_thread(
                fan_out.event, EventType.ORDER_FILLED, _fill(alice.user_id, other_bot["id"])
            )
            await asyncio.to_thread(fan_out.event, EventType.ORDER_UPDATED, _fill(alice.user_id, None))
            assert (await receive_json(mine))["type"] == "order_update"
            await _nothing_more(mine)
            await _nothing_more(theirs)

    asyncio.run(scenario())


def test_gone_and_signed_out_connections_are_forgotten(
    api: httpx.Client, gateway: Gateway, settings: Any
) -> None:
    alice = new_user(api)
    created = api.post("/v1/api-tokens", json={"name": "ws", "scope": "read"}, headers=alice.headers)
    assert created.status_code == 201, created.text
    token = created.json()
    fan_out = _fan_out(gateway, settings)

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ws_connections (connection_id, user_id, expires_at)"
            " VALUES ('vanished=', %s, now() + interval '1 hour')",
            (alice.user_id,),
        )

    async def scenario() -> None:
        async with connect(gateway, token["secret"]) as socket:
            revoked = await asyncio.to_thread(
                api.delete, f"/v1/api-tokens/{token['token']['id']}", headers=alice.headers
            )
            assert revoked.status_code == 204, revoked.text
            report = await asyncio.to_thread(
                fan_out.event, EventType.ORDER_UPDATED, _fill(alice.user_id, None)
            )
            assert (report.delivered, report.gone, report.closed) == (0, 1, 1)
            await asyncio.wait_for(socket.wait_closed(), 5)

    asyncio.run(scenario())
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM ws_connections").fetchone() == (0,)


def test_every_bot_status_change_is_announced_on_the_bus(api: httpx.Client, settings: Any) -> None:
    alice = new_user(api)
    bot = create_bot(api, alice)
    for action in ("start", "pause", "stop"):
        response = api.post(f"/v1/bots/{bot['id']}/{action}", headers=alice.headers)
        assert response.status_code == 200, response.text

    seen: list[dict[str, Any]] = []
    target = rule_target(PUSH, settings, handler=lambda event, _context: seen.append(event))
    deadline = time.monotonic() + 10
    while (
        len([e for e in seen if e["detail"].get("bot_id") == bot["id"]]) < 3 and time.monotonic() < deadline
    ):
        target.poll_once()
    mine = [e for e in seen if e["detail"].get("bot_id") == bot["id"]]
    assert [e["detail-type"] for e in mine] == [EventType.BOT_STATUS_CHANGED] * 3
    assert sorted((e["detail"]["from"], e["detail"]["to"]) for e in mine) == [
        ("paused", "stopped"),
        ("running", "paused"),
        ("stopped", "running"),
    ]
    assert mine[0]["detail"]["user_id"] == str(alice.user_id) and mine[0]["source"] == "tekoa"
