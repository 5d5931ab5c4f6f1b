"""Live updates and notifications against `tekoa up`, end to end.

One platform run walks the issue's whole story: a client connects with a token and subscribes
to a market and to its paper bot; it receives forming and closed candles, `bot_status_changed`
when the bot starts, then `trade_executed` and `position_update` when the bot's own base order
fills (a DCA bot buys on its first evaluation, on the next candle of the accelerated market),
and `bot_status_changed` when the bot stops. Another user's client, connected all along to the
same market and to all of its own bots, receives the candles and nothing else. A bad and an
expired token are refused at connect; a dropped connection is forgotten. The fill reaches a
loopback fake of the Telegram Bot API, and a Telegram endpoint that fails neither holds up the
live update nor loses the message: it is retried.

No step is timed: each waits generously for what it expects, so a loaded machine is slower,
not red.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import websockets

from tekoa.auth.jwt_tokens import PlatformTokens
from tekoa.auth.models import SESSION_SCOPES
from tekoa.db.connection import service_transaction
from tekoa.local.aws import local_jwt_signing_key
from tekoa.local.platform import local_database_url
from tekoa.settings import load_settings
from tests.conftest import free_port, private_directory
from tests.e2e.support import eventually, running_platform
from tests.fakes.telegram import FakeTelegram

# One platform at a time on this machine: the same group as test_tekoa_up.
pytestmark = pytest.mark.xdist_group("e2e")
PASSWORD = "correct horse battery staple"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"
MARKET = {"exchange": "simulated", "symbol": "BTC/USDT", "timeframe": "1m"}
OWN_TYPES = {"trade_executed", "position_update", "order_update", "bot_status_changed"}


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


def _register(base: str, email: str) -> tuple[str, str]:
    body = httpx.post(f"{base}/v1/auth/register", json={"email": email, "password": PASSWORD}, timeout=30)
    assert body.status_code == 201, body.text
    return body.json()["user"]["id"], body.json()["tokens"]["access_token"]


def _post(base: str, path: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"{base}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    assert response.status_code in (200, 201, 202), (path, response.text)
    result: dict[str, Any] = response.json()
    return result


class Client:
    """A WebSocket client that keeps every message it receives."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.messages: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.socket:
            self.messages.append(json.loads(text))

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        seen = len(self.messages)
        await self.socket.send(json.dumps(body))
        return await self.first(lambda m: m["type"] in {"subscribed", "unsubscribed", "pong", "error"}, seen)

    async def first(self, match: Any, start: int = 0, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for message in self.messages[start:]:
                if match(message):
                    return message
            assert time.monotonic() < deadline, f"no such message within {timeout_s} s: {self.messages[-5:]}"
            await asyncio.sleep(0.05)


async def _refused(url: str) -> int:
    with pytest.raises(websockets.InvalidStatus) as caught:
        async with websockets.connect(url, open_timeout=10):
            pass
    return int(caught.value.response.status_code)


def test_a_client_follows_its_market_bot_and_fills_live_and_nobody_else_sees_them(
    telegram: FakeTelegram,
) -> None:
    ports = {"api": free_port(), "aws": free_port(), "market": free_port(), "ws": free_port()}
    with private_directory("tekoa-e2e-live-") as state:
        data_dir = state / "data"
        with running_platform(
            data_dir,
            ports,
            TEKOA_MARKET_SIMULATED_SPEED="20",  # a 1m candle closes every 3 s
            TEKOA_TELEGRAM_API_URL=telegram.url,
            TEKOA_NOTIFY_RETRY_BASE_S="1",
            TEKOA_API_WORKERS="1",
        ) as platform:
            base, ws = platform.base, f"ws://127.0.0.1:{ports['ws']}"
            alice_id, alice = _register(base, "alice@example.com")
            _, bob = _register(base, "bob@example.com")
            strategy = _post(base, "/v1/strategies", alice, {"name": "dca", "definition": _dca()})
            bot = _post(
                base,
                "/v1/bots",
                alice,
                {
                    "name": "dca bot",
                    "strategy_id": strategy["id"],
                    "exchange": "simulated",
                    "symbol": "BTC/USDT",
                },
            )
            channel = {
                "kind": "telegram",
                "name": "phone",
                "chat_id": "42",
                "bot_token": BOT_TOKEN,
                "events": ["fills"],
            }
            _post(base, "/v1/notification-channels", alice, channel)
            settings = load_settings(data_dir=data_dir, aws_port=ports["aws"])
            expired = PlatformTokens(
                local_jwt_signing_key(data_dir).encode(), settings.jwt_issuer, settings.jwt_audience
            ).issue(alice_id, SESSION_SCOPES, now=time.time() - 3600)
            database_url = local_database_url(settings)

            async def scenario() -> tuple[Client, Client]:
                assert await _refused(f"{ws}/?token=not-a-token") == 401
                assert await _refused(f"{ws}/?token={expired.token}") == 401
                assert await _refused(f"{ws}/") == 401

                mine = Client(await websockets.connect(f"{ws}/?token={alice}"))
                theirs = Client(await websockets.connect(f"{ws}/?token={bob}"))
                subscribed = await mine.request(
                    {"action": "subscribe", "markets": [MARKET], "bots": [bot["id"]]}
                )
                assert subscribed["type"] == "subscribed", subscribed
                assert (await theirs.request({"action": "subscribe", "markets": [MARKET], "bots": ["*"]}))[
                    "type"
                ] == "subscribed"

                # Candles: the forming one about every second, and each closed one.
                forming = await mine.first(lambda m: m["type"] == "candle_update" and not m["data"]["closed"])
                closed = await mine.first(lambda m: m["type"] == "candle_update" and m["data"]["closed"])
                assert forming["data"]["symbol"] == closed["data"]["symbol"] == "BTC/USDT"
                assert set(forming) == {"type", "ts", "data"}

                # The bot starts (while Telegram is down): its subscribers hear of it.
                telegram.fail_next(1)
                seen = len(mine.messages)
                await asyncio.to_thread(_post, base, f"/v1/bots/{bot['id']}/start", alice)
                started = await mine.first(lambda m: m["type"] == "bot_status_changed", seen)
                assert (started["data"]["bot_id"], started["data"]["to"]) == (bot["id"], "running")

                # Its first evaluation buys: the fill of the bot's own order, then the position it opened.
                trade = await mine.first(
                    lambda m: m["type"] == "trade_executed" and m["data"]["bot_id"] == bot["id"],
                    seen,
                    timeout_s=180,
                )
                assert (trade["data"]["side"], trade["data"]["status"]) == ("buy", "filled"), trade
                assert trade["data"]["symbol"] == "BTC/USDT"
                after_trade = mine.messages.index(trade)
                position = await mine.first(
                    lambda m: m["type"] == "position_update" and m["data"]["bot_id"] == bot["id"], after_trade
                )
                assert position["data"]["symbol"] == "BTC/USDT"
                assert position["data"]["quantity"] == trade["data"]["filled_quantity"]

                # Telegram failed the first attempt; the retry reaches it, once.
                (message,) = await asyncio.to_thread(telegram.wait_for_messages, 1, 60)
                assert (message.token, message.chat_id) == (BOT_TOKEN, "42")
                bought = (
                    f"Bought {trade['data']['filled_quantity']} BTC/USDT at {trade['data']['average_price']}"
                )
                assert message.text.startswith(bought), message.text
                assert telegram.failed == 1

                seen = len(mine.messages)
                await asyncio.to_thread(_post, base, f"/v1/bots/{bot['id']}/stop", alice)
                stopped = await mine.first(lambda m: m["type"] == "bot_status_changed", seen)
                assert (stopped["data"]["from"], stopped["data"]["to"]) == ("running", "stopped")
                return mine, theirs

            async def run() -> None:
                mine, theirs = await scenario()
                await asyncio.sleep(1.0)  # anything misrouted would have arrived by now
                bobs = {m["type"] for m in theirs.messages}
                assert bobs == {"subscribed", "candle_update"}, bobs
                assert not OWN_TYPES & bobs

                # A connection that drops without a goodbye (no close frame) is forgotten.
                assert _connections(database_url) == 2
                mine.reader.cancel()
                mine.socket.transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
                await theirs.socket.close()
                eventually(lambda: _connections(database_url) == 0, "both connections forgotten", 15)

            asyncio.run(run())


def _connections(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn, service_transaction(conn):
        row = conn.execute("SELECT count(*) FROM ws_connections").fetchone()
    assert row is not None
    return int(row[0])


def _dca() -> dict[str, Any]:
    # A base order on the first evaluation; the take profit rests far above the market and no
    # safety order is allowed, so the only fill is the base order's.
    return {
        "kind": "builtin",
        "bot_type": "dca",
        "params": {
            "timeframe": "1m",
            "base_order_size": "100",
            "safety_order_size": "50",
            "max_safety_orders": 0,
            "price_deviation_pct": "10",
            "take_profit_pct": "50",
        },
    }
