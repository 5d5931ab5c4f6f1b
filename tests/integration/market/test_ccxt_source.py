"""CcxtSource against a loopback Binance: the real ccxt code on the real wire format.

Every test runs its own event loop under a hard timeout, starts its own fake exchange on
127.0.0.1 and closes everything it opened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from tekoa.domain.timeframes import Timeframe
from tekoa.errors import NotFound
from tekoa.market.ccxt.client import Backoff
from tekoa.market.ccxt.source import CcxtSource
from tekoa.market.ccxt.trades import StreamEvent, StreamEventKind
from tekoa.market.sources import TradeBatch
from tests.fakes.exchange import FakeBinance

TEST_TIMEOUT_S = 20.0
FAST_BACKOFF = Backoff(initial_s=0.05, max_s=0.2)
# A fixed "now" 90 s into a minute, for deterministic candle history.
FIXED_NOW_MS = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000 + 90_000


def run(test: Callable[[], Awaitable[None]], timeout_s: float = TEST_TIMEOUT_S) -> None:
    """Run an async test body on a fresh loop, failing it if it outlives `timeout_s`."""

    async def bounded() -> None:
        await asyncio.wait_for(test(), timeout_s)

    asyncio.run(bounded())


@dataclass
class Harness:
    """A fake exchange, a source aimed at it, and a consumer collecting what it yields."""

    fake: FakeBinance
    source: CcxtSource
    batches: asyncio.Queue[TradeBatch] = field(default_factory=asyncio.Queue)
    events: asyncio.Queue[StreamEvent] = field(default_factory=asyncio.Queue)
    seen_events: list[StreamEvent] = field(default_factory=list)

    async def trades(self, symbol: str, count: int, timeout_s: float = 5.0) -> dict[str, np.ndarray]:
        """The next `count` trades of `symbol` the source yields, as concatenated columns."""
        got: list[TradeBatch] = []

        async def take() -> None:
            while sum(len(b) for b in got) < count:
                batch = await self.batches.get()
                assert batch.symbol == symbol, f"unexpected batch for {batch.symbol}"
                got.append(batch)

        await asyncio.wait_for(take(), timeout_s)
        return {
            name: np.concatenate([getattr(b, name) for b in got])
            for name in ("timestamps_ms", "prices", "amounts", "trade_ids")
        }

    async def event(self, kind: StreamEventKind, timeout_s: float = 5.0) -> StreamEvent:
        """The next event; it must be of `kind`."""
        event = await asyncio.wait_for(self.events.get(), timeout_s)
        assert event.kind is kind, event
        return event


@contextlib.asynccontextmanager
async def streaming(
    symbols: list[str], *, replay_on_subscribe: int = 0, **source_kwargs: Any
) -> AsyncIterator[Harness]:
    """Start the fake and the source, consume `stream_trades(symbols)` in the background."""
    async with FakeBinance(replay_on_subscribe=replay_on_subscribe, lifetime_s=TEST_TIMEOUT_S + 5) as fake:
        holder: list[Harness] = []

        def on_event(event: StreamEvent) -> None:
            holder[0].seen_events.append(event)
            holder[0].events.put_nowait(event)

        source = CcxtSource(
            "binance",
            url_overrides=fake.url_overrides(),
            backoff=FAST_BACKOFF,
            on_event=on_event,
            **source_kwargs,
        )
        harness = Harness(fake=fake, source=source)
        holder.append(harness)

        async def consume() -> None:
            async for batch in source.stream_trades(symbols):
                harness.batches.put_nowait(batch)

        consumer = asyncio.create_task(consume())
        try:
            for symbol in symbols:
                await fake.wait_subscribed(symbol)
            yield harness
        finally:
            await source.close()
            await asyncio.wait_for(consumer, 5.0)


def test_trades_stream_through_ccxt_into_columnar_batches() -> None:
    async def body() -> None:
        async with streaming(["BTC/USDT", "ETH/USDT"]) as h:
            # Given trades on two markets, When the exchange pushes them
            btc = await h.fake.publish_trades("BTC/USDT", [("43000.10", "0.5"), ("43000.20", "0.25")])
            btc_got = await h.trades("BTC/USDT", 2)
            eth = await h.fake.publish_trades("ETH/USDT", [("2250.5", "3")])
            eth_got = await h.trades("ETH/USDT", 1)

            # Then each arrives once, in order, with the exchange's values and ids
            assert btc_got["timestamps_ms"].dtype == np.int64
            assert btc_got["prices"].tolist() == [43000.10, 43000.20]
            assert btc_got["amounts"].tolist() == [0.5, 0.25]
            assert btc_got["trade_ids"].tolist() == [e["t"] for e in btc]
            assert btc_got["timestamps_ms"].tolist() == [e["T"] for e in btc]
            assert eth_got["prices"].tolist() == [2250.5]
            assert eth_got["trade_ids"].tolist() == [eth[0]["t"]]
            assert h.source.is_fresh("BTC/USDT")
            assert h.source.is_fresh("ETH/USDT")
            assert h.seen_events == []

    run(body)


def test_the_last_trade_of_a_burst_arrives_without_waiting_for_another_message() -> None:
    async def body() -> None:
        async with streaming(["SOL/USDT"]) as h:
            # Given a burst of trades pushed faster than ccxt's watch calls come back, then quiet
            burst = await h.fake.publish_trades("SOL/USDT", [(150 + i, 1) for i in range(20)])

            # Then all of them arrive, though no later message resolves another watch
            got = await h.trades("SOL/USDT", len(burst), timeout_s=2.0)
            assert got["trade_ids"].tolist() == [e["t"] for e in burst]

    run(body)


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-frame", "tcp-cut"])
def test_dropped_connection_reconnects_and_announces_the_gap(abrupt: bool) -> None:
    async def body() -> None:
        async with streaming(["BTC/USDT"]) as h:
            before = await h.fake.publish_trades("BTC/USDT", [(100, 1), (101, 1)])
            await h.trades("BTC/USDT", 2)

            # When the exchange drops the socket
            await h.fake.drop_connections(abrupt=abrupt)

            # Then the market is reported stale, a new socket subscribes again,
            stale = await h.event(StreamEventKind.STALE)
            assert stale.reason.startswith("error")
            assert not h.source.is_fresh("BTC/USDT")
            await h.fake.wait_subscribed("BTC/USDT", count=2)
            # and once trades flow again a reconnect notice carries the gap's start
            after = await h.fake.publish_trades("BTC/USDT", [(102, 2)])
            got = await h.trades("BTC/USDT", 1)
            reconnected = await h.event(StreamEventKind.RECONNECTED)
            assert got["trade_ids"].tolist() == [after[0]["t"]]
            assert reconnected.last_trade_ms == before[-1]["T"]
            assert reconnected.reconnects == 1
            assert h.source.is_fresh("BTC/USDT")
            assert h.source.freshness()["BTC/USDT"].reconnects == 1

    run(body)


def test_silent_stall_is_detected_within_the_window_and_the_client_is_recreated() -> None:
    stale_after_s = 1.0

    async def body() -> None:
        async with streaming(["BTC/USDT"], stale_after_s=stale_after_s) as h:
            await h.fake.publish_trades("BTC/USDT", [(100, 1)])
            await h.trades("BTC/USDT", 1)
            loop = asyncio.get_running_loop()

            # When the socket stays open but goes silent (no data, no pongs)
            stalled_at = loop.time()
            assert h.fake.stall_connections() == 1
            stale = await h.event(StreamEventKind.STALE, timeout_s=stale_after_s + 2)

            # Then staleness is declared within the window, not long after it
            waited = loop.time() - stalled_at
            assert waited <= stale_after_s + 0.5
            assert stale.reason == "silent"
            assert not h.source.is_fresh("BTC/USDT")
            # and a new client opens a new socket while the stalled one is closed
            await h.fake.wait_subscribed("BTC/USDT", count=2)
            assert h.fake.connections_opened == 2
            await h.fake.publish_trades("BTC/USDT", [(101, 1)])
            got = await h.trades("BTC/USDT", 1)
            await h.event(StreamEventKind.RECONNECTED)
            assert got["prices"].tolist() == [101.0]
            assert h.source.is_fresh("BTC/USDT")
            assert h.fake.open_connections() == 1

    run(body)


def test_trades_replayed_after_a_reconnect_are_not_emitted_twice() -> None:
    async def body() -> None:
        # Given a venue that re-sends its last 5 trades to every new subscriber
        async with streaming(["BTC/USDT"], replay_on_subscribe=5) as h:
            same_ms = 1_700_000_000_123
            first = await h.fake.publish_trades("BTC/USDT", [(100, 1), (101, 1), (102, 1)], ts_ms=same_ms)
            await h.trades("BTC/USDT", 3)

            # When the socket drops and the new one starts with the replay
            await h.fake.drop_connections()
            await h.fake.wait_subscribed("BTC/USDT", count=2)
            await h.event(StreamEventKind.STALE)
            # (a new trade in the same millisecond as the replayed ones must still pass)
            second = await h.fake.publish_trades("BTC/USDT", [(103, 1), (104, 1)], ts_ms=same_ms)
            got = await h.trades("BTC/USDT", 2)

            # Then only the new trades are emitted, and the replay is counted as dropped
            assert got["trade_ids"].tolist() == [e["t"] for e in second]
            assert h.source.freshness()["BTC/USDT"].duplicates_dropped == len(first)
            await asyncio.sleep(0.2)
            assert h.batches.empty()

    run(body)


def test_fetch_ohlcv_returns_closed_candles_only() -> None:
    async def body() -> None:
        now = FIXED_NOW_MS
        async with FakeBinance(clock_ms=lambda: now) as fake:
            source = CcxtSource("binance", url_overrides=fake.url_overrides(), clock_ms=lambda: now)
            try:
                since = now - 10 * 60_000
                rows = await source.fetch_ohlcv("BTC/USDT", Timeframe.M1, since, 100)
            finally:
                await source.close()

        # The exchange served the running candle too; the source kept only finished ones
        served = fake.klines("BTC/USDT", "1m", since, now + 60_000, closed_only=False)
        expected = fake.klines("BTC/USDT", "1m", since, now + 60_000)
        assert len(served) == len(expected) + 1
        assert len(rows) == len(expected) == 9
        assert int(rows.open_time_ms[-1]) + Timeframe.M1.ms <= now
        assert_rows_equal(rows, expected)

    run(body)


def test_fetch_ohlcv_range_paginates_and_equals_the_exchange_history() -> None:
    async def body() -> None:
        now = FIXED_NOW_MS
        async with FakeBinance(clock_ms=lambda: now) as fake:
            source = CcxtSource("binance", url_overrides=fake.url_overrides(), clock_ms=lambda: now)
            start = Timeframe.M1.open_time(now) - 3_000 * 60_000
            end = start + 2_500 * 60_000
            try:
                rows = await source.fetch_ohlcv_range("BTC/USDT", Timeframe.M1, start, end, page_limit=1000)
            finally:
                await source.close()

        kline_calls = [q for path, q in fake.rest_requests if path.endswith("/klines")]
        assert [int(q["startTime"]) for q in kline_calls] == [
            start,
            start + 1000 * 60_000,
            start + 2000 * 60_000,
        ]
        assert len(rows) == 2_500
        assert bool(np.all(np.diff(rows.open_time_ms) == Timeframe.M1.ms))
        assert_rows_equal(rows, fake.klines("BTC/USDT", "1m", start, end))

    run(body)


def test_fetch_ohlcv_range_into_the_present_stops_at_the_last_closed_candle() -> None:
    async def body() -> None:
        now = FIXED_NOW_MS
        async with FakeBinance(clock_ms=lambda: now) as fake:
            source = CcxtSource("binance", url_overrides=fake.url_overrides(), clock_ms=lambda: now)
            start = Timeframe.M5.open_time(now) - 50 * Timeframe.M5.ms
            try:
                # Default page size: the exchange's own (1000 for Binance per ccxt), one page here
                rows = await source.fetch_ohlcv_range("ETH/USDT", Timeframe.M5, start, now + 86_400_000)
            finally:
                await source.close()

        expected = fake.klines("ETH/USDT", "5m", start, now + 86_400_000)
        assert len(rows) == 50
        assert int(rows.open_time_ms[-1]) + Timeframe.M5.ms <= now
        assert_rows_equal(rows, expected)
        kline_calls = [q for path, q in fake.rest_requests if path.endswith("/klines")]
        assert len(kline_calls) == 1
        assert kline_calls[0]["limit"] == "1000"

    run(body)


def test_transient_rest_failures_are_retried() -> None:
    async def body() -> None:
        now = FIXED_NOW_MS
        async with FakeBinance(clock_ms=lambda: now) as fake:
            source = CcxtSource(
                "binance", url_overrides=fake.url_overrides(), clock_ms=lambda: now, backoff=FAST_BACKOFF
            )
            try:
                # Given the exchange answers 503 to the next two calls (markets load, then klines)
                fake.fail_next_rest(2)
                rows = await source.fetch_ohlcv("BTC/USDT", Timeframe.M1, now - 5 * 60_000, 10)
            finally:
                await source.close()

        assert len(rows) == 4
        assert len(fake.rest_requests) == 4

    run(body)


def test_streaming_an_unlisted_symbol_fails_at_the_door() -> None:
    async def body() -> None:
        async with FakeBinance() as fake:
            source = CcxtSource("binance", url_overrides=fake.url_overrides())
            try:
                with pytest.raises(NotFound, match="DOGE/USDT"):
                    async for _ in source.stream_trades(["BTC/USDT", "DOGE/USDT"]):
                        pass
            finally:
                await source.close()

    run(body)


def assert_rows_equal(rows: Any, expected: list[list[float]]) -> None:
    """Columns of `rows` equal the fake's `[open_time, o, h, l, c, v]` rows exactly."""
    table = np.array(expected, dtype=np.float64).reshape(len(expected), 6)
    assert rows.open_time_ms.tolist() == table[:, 0].astype(np.int64).tolist()
    for column, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        assert getattr(rows, name).tolist() == table[:, column].tolist(), name
