"""The stream follows the markets running bots need, without a restart."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tekoa.market.stream.service import MarketStreamService
from tests.integration.api.auth_support import settings as settings
from tests.integration.api.trading_support import create_bot, new_user
from tests.integration.market.market_support import (
    RecordingPublisher,
    config,
    eventually,
    pooled,
    run,
    simulated,
)


def test_starting_and_stopping_a_bot_subscribes_and_unsubscribes_its_market(
    api: httpx.Client, settings: Any
) -> None:
    # Given a stream following BTC/USDT by default, and a user's stopped bot on ETH/USDT
    caller = new_user(api)
    bot = create_bot(api, caller, symbol="ETH/USDT")

    async def body() -> None:
        exchange = simulated(["BTC/USDT", "ETH/USDT"])
        database = pooled(settings.database_url)
        service = MarketStreamService(
            exchange,
            database,
            RecordingPublisher(),
            config(["BTC/USDT"], follow_bots=True),
            clock_ms=exchange.now_ms,
        )
        task = asyncio.create_task(service.run())
        await eventually(lambda: "BTC/USDT" in service.markets, "default market followed")
        assert "ETH/USDT" not in service.markets

        # When the bot starts / Then its market is streamed
        response = await asyncio.to_thread(api.post, f"/v1/bots/{bot['id']}/start", headers=caller.headers)
        assert response.status_code == 200, response.text
        await eventually(lambda: "ETH/USDT" in service.markets, "bot's market followed")
        await eventually(lambda: service.markets["ETH/USDT"].batches > 0, "bot's market streaming")

        # When the bot stops / Then the market is dropped; the default stays
        response = await asyncio.to_thread(api.post, f"/v1/bots/{bot['id']}/stop", headers=caller.headers)
        assert response.status_code == 200, response.text
        await eventually(lambda: "ETH/USDT" not in service.markets, "bot's market dropped")
        assert "BTC/USDT" in service.markets

        service.request_stop()
        await asyncio.wait_for(task, 30)
        database.close()

    run(body)
