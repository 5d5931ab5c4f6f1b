"""The WebSocket API through the local gateway: who may connect, what a connection subscribes
to, and that the push adapter reaches it (and learns when it is gone)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any
from urllib.parse import quote, urlsplit

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


def _exchange(url: str, requests: bytes, answers: int) -> list[tuple[int, dict[str, str], bytes]]:
    """Write `requests` on one new connection at once; read `answers` responses (status,
    headers, body) in order, then whatever else the server sends before it closes or goes quiet."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(requests)
        data = b""
        found: list[tuple[int, dict[str, str], bytes]] = []
        while len(found) < answers:
            end = data.find(b"\r\n\r\n")
            if end >= 0:
                status_line, *lines = data[:end].decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)
                }
                length = int(headers.get("content-length", "0"))
                if len(data) >= end + 4 + length:
                    found.append((int(status_line.split(" ")[1]), headers, data[end + 4 : end + 4 + length]))
                    data = data[end + 4 + length :]
                    continue
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(found)} answers"
            data += chunk
    return found


def _management_request(method: str, connection_id: str, body: bytes = b"") -> bytes:
    head = f"{method} /@connections/{quote(connection_id, safe='')} HTTP/1.1\r\nhost: local\r\n"
    return (head + f"content-length: {len(body)}\r\n\r\n").encode() + body


@pytest.mark.parametrize("first", ["@connections", "health"])
def test_the_management_endpoint_answers_pipelined_requests_in_order(
    api: httpx.Client, gateway: Gateway, settings: Any, first: str
) -> None:
    """The push adapter's kept connections open with an @connections request and take the
    gateway's own fast path; any other connection stays with uvicorn. Both answer alike."""
    alice = new_user(api)

    async def scenario() -> None:
        async with connect(gateway, _token(alice)) as client:
            ((connection_id, _, _),) = _connections(settings)
            opening = (
                b"GET /health HTTP/1.1\r\nhost: local\r\n\r\n"
                if first == "health"
                else _management_request("POST", connection_id, b'{"n":0}')
            )
            requests = b"".join(
                [
                    opening,
                    _management_request("POST", connection_id, '{"n":1,"é":"ü"}'.encode()),
                    _management_request("GET", connection_id),
                    _management_request("POST", "unknown=="),
                    _management_request("PATCH", connection_id),
                ]
            )
            answers = await asyncio.to_thread(_exchange, gateway.url, requests, 5)
            assert [status for status, _, _ in answers] == [200, 200, 200, 410, 405]
            assert json.loads(answers[2][2])["identity"]["sourceIp"] == "127.0.0.1"
            assert answers[3][1]["x-amzn-errortype"] == "GoneException"
            received = [await receive_json(client) for _ in range(2 if first == "@connections" else 1)]
            assert received[-1] == {"n": 1, "é": "ü"}

    asyncio.run(scenario())


def test_an_unreadable_management_request_is_refused_and_the_connection_closed(gateway: Gateway) -> None:
    chunked = (
        b"POST /@connections/x%3D HTTP/1.1\r\nhost: local\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    ((status, headers, _),) = _exchange(gateway.url, chunked, 1)
    assert (status, headers["connection"]) == (400, "close")
