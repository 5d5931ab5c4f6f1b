"""The simulated exchange: deterministic, realistic enough, and history equal to the stream."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import numpy as np
import pytest

from tekoa.domain.candles import Candle, decimal_from_float
from tekoa.domain.timeframes import Timeframe
from tekoa.errors import NotFound
from tekoa.market.aggregation import aggregate_trades
from tekoa.market.simulated import SimulatedExchange
from tekoa.market.sources import MarketSource, TradeBatch
from tekoa.market.streaming import StreamingAggregator

T0 = 1_717_200_000_000  # 2024-06-01T00:00Z
HOUR = 3_600_000
DAY = 86_400_000


def exchange(
    symbols: Sequence[str] = ("XRP/USDT",), seed: int = 7, stop_ms: int | None = None
) -> SimulatedExchange:
    """A virtual-clock exchange starting at T0."""
    return SimulatedExchange(symbols, seed=seed, speed=math.inf, start_ms=T0, stop_ms=stop_ms)


async def collect(source: SimulatedExchange, symbols: Sequence[str]) -> list[TradeBatch]:
    return [batch async for batch in source.stream_trades(symbols)]


def test_it_is_a_market_source() -> None:
    # Given a simulated exchange / Then it satisfies the MarketSource protocol statically
    source: MarketSource = exchange()
    assert source.exchange == "simulated"


def test_the_same_seed_gives_the_same_trades_and_another_seed_different_ones() -> None:
    # Given two exchanges with one seed and one with another
    window = (T0, T0 + HOUR)
    first = exchange(seed=1).trades_between("XRP/USDT", *window)
    again = exchange(seed=1).trades_between("XRP/USDT", *window)
    other = exchange(seed=2).trades_between("XRP/USDT", *window)

    # Then the same seed reproduces every column, and another seed does not
    for column in ("timestamps_ms", "prices", "amounts", "trade_ids"):
        np.testing.assert_array_equal(getattr(first, column), getattr(again, column))
    assert not np.array_equal(first.prices[:100], other.prices[:100])


def test_the_stream_delivers_exactly_the_trades_of_its_window() -> None:
    # Given a virtual-clock stream over two hours straddling midnight
    start = T0 + DAY - HOUR
    source = SimulatedExchange(["XRP/USDT"], seed=7, speed=math.inf, start_ms=start, stop_ms=start + 2 * HOUR)

    # When it is consumed to the end
    batches = asyncio.run(collect(source, ["XRP/USDT"]))

    # Then the concatenated batches equal the window's trades, ascending, across the day boundary
    streamed = np.concatenate([b.timestamps_ms for b in batches])
    expected = source.trades_between("XRP/USDT", start, start + 2 * HOUR)
    np.testing.assert_array_equal(streamed, expected.timestamps_ms)
    np.testing.assert_array_equal(np.concatenate([b.trade_ids for b in batches]), expected.trade_ids)
    assert np.all(np.diff(streamed) >= 0)


def test_history_equals_the_candles_the_stream_produces() -> None:
    # Given a stream of three hours fed through the streaming aggregator
    source = exchange(("XRP/USDT", "SOL/USDT"), stop_ms=T0 + 3 * HOUR)
    aggregator = StreamingAggregator()
    closed: list[Candle] = []
    for batch in asyncio.run(collect(source, source.symbols)):
        closed += aggregator.ingest(batch)
    closed += aggregator.advance(source.now_ms() + aggregator.grace_ms)

    # When the same window is fetched as REST history
    history = asyncio.run(source.fetch_ohlcv("SOL/USDT", Timeframe.M5, T0, 1_000))

    # Then both give identical candles
    streamed = [c for c in closed if c.symbol == "SOL/USDT" and c.timeframe is Timeframe.M5]
    assert len(history) == len(streamed) == 36
    assert [c.open_time for c in streamed] == history.open_time_ms.tolist()
    assert [float(c.close) for c in streamed] == history.close.tolist()
    assert [c.volume for c in streamed] == [decimal_from_float(v) for v in history.volume]


def test_history_holds_only_closed_candles_and_respects_the_limit() -> None:
    # Given a clock 90 minutes and 30 seconds into the day
    source = exchange(stop_ms=T0 + 90 * 60_000 + 30_000)
    asyncio.run(collect(source, ["XRP/USDT"]))

    # When history is fetched
    hourly = asyncio.run(source.fetch_ohlcv("XRP/USDT", Timeframe.H1, T0, 100))
    minutes = asyncio.run(source.fetch_ohlcv("XRP/USDT", Timeframe.M1, T0 + 1, 10))

    # Then the forming hour is absent, a page holds at most `limit`, starting after `since`
    assert hourly.open_time_ms.tolist() == [T0]
    assert len(minutes) == 10
    assert minutes.open_time_ms[0] == T0 + 60_000


def test_trades_look_like_an_exchange_feed() -> None:
    # Given a day of BTC/USDT trades
    trades = exchange(("BTC/USDT",)).trades_between("BTC/USDT", T0, T0 + DAY)

    # Then prices sit on the 0.01 tick near 60 000, amounts are positive on the lot, time and ids ascend
    assert trades.prices.min() > 30_000 and trades.prices.max() < 120_000
    np.testing.assert_array_equal(np.round(trades.prices, 2), trades.prices)
    assert trades.amounts.min() >= 1e-5
    np.testing.assert_array_equal(np.round(trades.amounts, 5), trades.amounts)
    assert np.all(np.diff(trades.timestamps_ms) >= 0)
    assert np.all(np.diff(trades.trade_ids) > 0)


def test_volatility_clusters() -> None:
    # Given three days of 1m candles
    trades = exchange(("SOL/USDT",)).trades_between("SOL/USDT", T0, T0 + 3 * DAY)
    closes = aggregate_trades(trades.timestamps_ms, trades.prices, trades.amounts, Timeframe.M1).close

    # Then large moves follow large moves: absolute returns are autocorrelated
    moves = np.abs(np.diff(np.log(closes)))
    assert np.corrcoef(moves[:-1], moves[1:])[0, 1] > 0.05


def test_trading_is_busier_in_the_afternoon_than_at_night() -> None:
    # Given three days of trades
    trades = exchange().trades_between("XRP/USDT", T0, T0 + 3 * DAY)

    # Then 15:00 UTC sees more than twice the trades of 03:00 UTC
    hour = (trades.timestamps_ms - T0) // HOUR % 24
    assert np.count_nonzero(hour == 15) > 2 * np.count_nonzero(hour == 3)


def test_unknown_symbols_are_not_found() -> None:
    # Given an exchange listing XRP/USDT only / When asked for DOGE/USDT / Then NotFound
    with pytest.raises(NotFound):
        asyncio.run(exchange().fetch_ohlcv("DOGE/USDT", Timeframe.M1, T0, 10))


def test_closing_ends_an_endless_stream() -> None:
    # Given an endless virtual-clock stream
    source = exchange()

    async def consume() -> int:
        count = 0
        async for _ in source.stream_trades(["XRP/USDT"]):
            count += 1
            if count == 3:
                await source.close()
        return count

    # When the exchange is closed while streaming / Then the stream finishes
    assert asyncio.run(consume()) == 3


def test_market_rules_describe_the_tick_and_lot_the_trades_sit_on() -> None:
    # Given the default majors / When their rules are asked for / Then each has its tick and lot
    exchange = SimulatedExchange(seed=0, speed=math.inf, start_ms=T0)
    rules = {r.symbol: r for r in asyncio.run(exchange.market_rules(exchange.symbols))}
    assert set(rules) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    assert (str(rules["BTC/USDT"].price_step), str(rules["BTC/USDT"].amount_step)) == ("0.01", "0.00001")
    assert (rules["ETH/USDT"].base, rules["ETH/USDT"].quote) == ("ETH", "USDT")
