"""The WebSocket API through the local gateway: who may connect, what a connection subscribes
to, and that the push adapter reaches it (and learns when it is gone)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import psycopg
import pytest
import websockets

from tekoa.aws.push import ManagementApiPusher
from tests.integration.api.auth_support import settings as settings
from tests.integration.api.trading_support import create_bot, new_user
from tests.integration.realtime.realtime_support import Gateway, connect, receive_json, request
from tests.integration.realtime.realtime_support import gateway as gateway


def _token(caller: Any) -> str:
    return str(caller.headers["Authorization"].removeprefix("Bearer "))


def _connections(settings: Any) -> list[tuple[str, Any, list[str]]]:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        return [
            (row[0], row[1], list(row[2]))
            for row in conn.execute("SELECT connection_id, user_id, channels FROM ws_connections")
        ]


def _pusher(gateway: Gateway) -> ManagementApiPusher:
    return ManagementApiPusher.from_boto3(gateway.url, "us-east-1")


def test_a_connection_subscribes_to_a_market_and_its_own_bots_and_receives_pushes(
    api: httpx.Client, gateway: Gateway, settings: Any
) -> None:
    alice = new_user(api)
    bot = create_bot(api, alice)

    async def scenario() -> None:
        async with connect(gateway, _token(alice)) as socket:
            answer = await request(
                socket,
                {
                    "action": "subscribe",
                    "markets": [{"exchange": "simulated", "symbol": "btc/usdt"}],
                    "bots": [bot["id"]],
                },
            )
            assert answer["type"] == "subscribed", answer
            assert answer["data"] == {
                "markets": [{"exchange": "simulated", "symbol": "BTC/USDT", "timeframe": "1m"}],
                "bots": [bot["id"]],
            }
            ((connection_id, owner, channels),) = _connections(settings)
            assert owner == alice.user_id
            assert channels == ["market:simulated:BTC/USDT:1m", f"bot:{bot['id']}"]

            pusher = _pusher(gateway)
            result = await asyncio.to_thread(pusher.send, [connection_id, "unknown="], b'{"type":"price"}')
            assert (result.delivered, result.gone, result.failed) == ([connection_id], ["unknown="], [])
            assert await receive_json(socket) == {"type": "price"}

            answer = await request(socket, {"action": "unsubscribe", "bots": [bot["id"]]})
            assert answer["data"]["bots"] == [] and len(answer["data"]["markets"]) == 1
            assert (await request(socket, {"action": "ping"}))["type"] == "pong"

    asyncio.run(scenario())


def test_a_bad_missing_or_signed_out_token_is_refused_at_connect(api: httpx.Client, gateway: Gateway) -> None:
    alice = new_user(api)

    async def refused(token: str | None) -> int:
        with pytest.raises(websockets.InvalidStatus) as caught:
            async with connect(gateway, token):
                pass
        return int(caught.value.response.status_code)

    assert asyncio.run(refused(None)) == 401
    assert asyncio.run(refused("not-a-token")) == 401
    assert asyncio.run(refused(_token(alice) + "x")) == 401


def test_another_users_bot_cannot_be_subscribed(api: httpx.Client, gateway: Gateway, settings: Any) -> None:
    alice, bob = new_user(api), new_user(api)
    alices_bot = create_bot(api, alice)

    async def scenario() -> dict[str, Any]:
        async with connect(gateway, _token(bob)) as socket:
            return await request(socket, {"action": "subscribe", "bots": ["*", alices_bot["id"]]})

    answer = asyncio.run(scenario())
    assert answer["type"] == "error"
    assert answer["data"] == {"code": "VALIDATION_ERROR", "message": "no bot with this id", "field": "bots.1"}


def test_the_token_may_come_as_a_subprotocol(api: httpx.Client, gateway: Gateway) -> None:
    alice = new_user(api)

    async def scenario() -> str | None:
        async with websockets.connect(
            gateway.ws_url + "/",
            subprotocols=["tekoa.v1", f"bearer.{_token(alice)}"],  # type: ignore[list-item]
        ) as socket:
            return socket.subprotocol

    assert asyncio.run(scenario()) == "tekoa.v1"


def test_closing_a_connection_through_the_management_api_runs_disconnect(
    api: httpx.Client, gateway: Gateway, settings: Any
) -> None:
    alice = new_user(api)

    async def scenario() -> None:
        async with connect(gateway, _token(alice)) as socket:
            ((connection_id, _, _),) = _connections(settings)
            result = await asyncio.to_thread(_pusher(gateway).close, [connection_id])
            assert result.delivered == [connection_id]
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(socket.recv(), 5)

    asyncio.run(scenario())
    for _ in range(100):  # $disconnect runs as the socket closes
        if not _connections(settings):
            break
        time.sleep(0.05)
    assert _connections(settings) == []


def test_bad_messages_answer_errors_and_keep_the_connection(api: httpx.Client, gateway: Gateway) -> None:
    alice = new_user(api)

    async def scenario() -> list[dict[str, Any]]:
        async with connect(gateway, _token(alice)) as socket:
            answers = [
                await request(socket, {"action": "dance"}),
                await request(socket, {"action": "subscribe", "markets": [{"exchange": "simulated"}]}),
                await request(socket, {"action": "subscribe", "bots": ["not-a-uuid"]}),
            ]
            await socket.send("not json")
            answers.append(await receive_json(socket))
            answers.append(await request(socket, {"action": "ping"}))
            return answers

    dance, no_symbol, bad_bot, not_json, pong = asyncio.run(scenario())
    assert dance["data"]["field"] == "action"
    assert no_symbol["data"]["field"] == "markets.0.symbol"
    assert bad_bot["type"] == "error" and bad_bot["data"]["field"].startswith("bots.0")
    assert not_json["type"] == "error"
    assert pong["type"] == "pong"
