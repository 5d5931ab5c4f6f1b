"""Helpers for market-stream tests: bounded async runs, scripted sources, an event recorder."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from tekoa.aws.events import BusEvent
from tekoa.db import candles as store
from tekoa.db.connection import PooledDatabase, connect
from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import Timeframe
from tekoa.exchanges.rules import MarketRules
from tekoa.market.simulated import SimulatedExchange
from tekoa.market.sources import OhlcvRows, TradeBatch
from tekoa.market.stream.config import StreamConfig
from tekoa.market.stream.service import MarketStreamService

T0 = 1_717_200_000_000  # 2024-06-01T00:00Z, a Saturday; any minute boundary works
M = 60_000
TEST_TIMEOUT_S = 60.0


def run(test: Callable[[], Awaitable[None]], timeout_s: float = TEST_TIMEOUT_S) -> None:
    """Run an async test body on a fresh loop, failing it if it outlives `timeout_s`."""

    async def bounded() -> None:
        await asyncio.wait_for(test(), timeout_s)

    asyncio.run(bounded())


async def eventually(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Wait until `condition()` holds (polled); fail naming `what` if it never does."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), timeout_s)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


def simulated(
    symbols: Sequence[str] = ("BTC/USDT",), *, start_ms: int = T0, stop_ms: int | None = None
) -> SimulatedExchange:
    """A seeded exchange on a virtual clock: streams as fast as it is read, up to `stop_ms`."""
    return SimulatedExchange(symbols, seed=7, speed=math.inf, start_ms=start_ms, stop_ms=stop_ms)


def config(symbols: Sequence[str] = ("BTC/USDT",), **overrides: Any) -> StreamConfig:
    """Fast loops, no health server, no bots (unless asked), a few minutes of history."""
    values: dict[str, Any] = {
        "default_symbols": tuple(symbols),
        "follow_bots": False,
        "tick_s": 0.02,
        "poll_s": 0.2,
        "backfill_every_s": 3_600.0,
        "history_days": 10 / 1_440,  # ten minutes
        "stale_after_s": 30.0,
        "health_port": None,
        "retry_after_s": 0.05,
        "stop_budget_s": 20.0,
    }
    values.update(overrides)
    return StreamConfig(**values)


@dataclass
class RecordingPublisher:
    """An in-memory EventPublisher: what a bus would have received, in order."""

    events: list[BusEvent] = field(default_factory=list)

    def publish(self, events: Sequence[BusEvent]) -> None:
        self.events.extend(events)

    def announced(self) -> list[tuple[str, str, str, int]]:
        return [
            (e.detail["exchange"], e.detail["symbol"], e.detail["timeframe"], e.detail["open_time"])
            for e in self.events
        ]


class ScriptedSource:
    """Wraps a SimulatedExchange to script outages.

    `drop`: trades in these [start, end) windows never arrive (a dropped connection); when
    the first trade after a window arrives, `on_event` hears "reconnected" first, as
    `CcxtSource` reports it. `gate`: while cleared, the stream delivers nothing (a stall).
    """

    def __init__(
        self,
        inner: SimulatedExchange,
        *,
        drop: Sequence[tuple[int, int]] = (),
        announce_reconnect: bool = True,
    ) -> None:
        self.inner = inner
        self.exchange = inner.exchange
        self.drop = list(drop)
        self.announce_reconnect = announce_reconnect
        self.on_event: Callable[[Any], None] | None = None
        self.gate = asyncio.Event()
        self.gate.set()
        self.delivered_after_gate = 0

    async def stream_trades(self, symbols: Sequence[str]) -> AsyncIterator[TradeBatch]:
        dropping = False
        async for batch in self.inner.stream_trades(symbols):
            await self.gate.wait()
            keep = np.ones(len(batch), dtype=bool)
            for lo, hi in self.drop:
                keep &= ~((batch.timestamps_ms >= lo) & (batch.timestamps_ms < hi))
            if not keep.any():
                dropping = True
                continue
            if dropping and self.announce_reconnect and self.on_event is not None:
                self.on_event(SimpleNamespace(kind="reconnected", symbol=batch.symbol, reason="test"))
            dropping = False
            yield TradeBatch(
                batch.exchange,
                batch.symbol,
                batch.timestamps_ms[keep],
                batch.prices[keep],
                batch.amounts[keep],
                batch.trade_ids[keep],
            )

    async def fetch_ohlcv(self, symbol: str, timeframe: Timeframe, since_ms: int, limit: int) -> OhlcvRows:
        return await self.inner.fetch_ohlcv(symbol, timeframe, since_ms, limit)

    async def market_rules(self, symbols: Sequence[str]) -> list[MarketRules]:
        return await self.inner.market_rules(symbols)

    async def close(self) -> None:
        await self.inner.close()


async def start(service: MarketStreamService) -> asyncio.Task[None]:
    task = asyncio.create_task(service.run())
    await asyncio.sleep(0)
    return task


async def stop(service: MarketStreamService, task: asyncio.Task[None]) -> None:
    service.request_stop()
    await asyncio.wait_for(task, 30)


def stored(database_url: str, symbol: str, timeframe: Timeframe) -> list[Candle]:
    with connect(database_url) as conn:
        return store.read_candles(conn, "simulated", symbol, timeframe, limit=100_000)


def freshness(database_url: str, symbol: str) -> bool | None:
    with connect(database_url) as conn:
        row = store.get_freshness(conn, "simulated", symbol)
    return None if row is None else row.fresh


async def rest_history(
    exchange: SimulatedExchange, symbol: str, timeframe: Timeframe, start_ms: int, end_ms: int
) -> list[Candle]:
    """The exchange's REST history of [start, end) as domain candles (trade counts unknown)."""
    out: list[Candle] = []
    since = start_ms
    while since < end_ms:
        page = await exchange.fetch_ohlcv(symbol, timeframe, since, 1_000)
        if len(page) == 0:
            break
        for i in range(len(page)):
            open_time = int(page.open_time_ms[i])
            if open_time >= end_ms:
                break
            values = (page.open[i], page.high[i], page.low[i], page.close[i], page.volume[i])
            out.append(
                Candle.from_floats(
                    exchange.exchange, symbol, timeframe, open_time, tuple(map(float, values)), 0
                )  # type: ignore[arg-type]
            )
        since = int(page.open_time_ms[-1]) + timeframe.ms
    return out


def ohlcv(candles: Sequence[Candle]) -> list[tuple[Any, ...]]:
    """What must match between stream and REST: time and money, not the trade count."""
    return [(c.open_time, c.open, c.high, c.low, c.close, c.volume) for c in candles]


def pooled(database_url: str) -> PooledDatabase:
    return PooledDatabase(database_url, max_size=4)
