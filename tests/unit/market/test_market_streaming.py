"""Streaming aggregation: each candle exactly once, exact, with duplicate, late and restart rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import ALL_TIMEFRAMES, Timeframe
from tekoa.market.aggregation import aggregate_trades_all
from tekoa.market.sources import TradeBatch
from tekoa.market.streaming import StreamingAggregator

T0 = 1_717_200_000_000  # 2024-06-01T00:00Z
M1 = 60_000


def batch(
    timestamps: list[int] | np.ndarray,
    prices: list[float] | np.ndarray,
    ids: list[int] | np.ndarray,
    *,
    amounts: list[float] | np.ndarray | None = None,
    symbol: str = "BTC/USDT",
    exchange: str = "binance",
) -> TradeBatch:
    n = len(timestamps)
    return TradeBatch(
        exchange=exchange,
        symbol=symbol,
        timestamps_ms=np.asarray(timestamps, dtype=np.int64),
        prices=np.asarray(prices, dtype=np.float64),
        amounts=np.ones(n) if amounts is None else np.asarray(amounts, dtype=np.float64),
        trade_ids=np.asarray(ids, dtype=np.int64),
    )


def keys(candles: list[Candle]) -> list[tuple[str, int]]:
    return [(c.timeframe.value, c.open_time) for c in candles]


@st.composite
def trade_stream(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int], list[bool]]:
    n = draw(st.integers(1, 150))
    steps = draw(st.lists(st.integers(0, 20 * M1), min_size=n, max_size=n))
    timestamps = T0 + np.cumsum(np.asarray(steps, dtype=np.int64))
    prices = np.asarray(draw(st.lists(st.floats(0.01, 1e5), min_size=n, max_size=n)))
    amounts = np.asarray(draw(st.lists(st.floats(0.0, 100.0), min_size=n, max_size=n)))
    cuts = sorted(set(draw(st.lists(st.integers(1, n), max_size=12))) | {n})
    ticks = draw(st.lists(st.booleans(), min_size=len(cuts), max_size=len(cuts)))
    return timestamps, prices, amounts, cuts, ticks


@settings(max_examples=50, deadline=None)
@given(stream=trade_stream())
def test_streamed_candles_equal_batch_aggregation_each_exactly_once(
    stream: tuple[np.ndarray, np.ndarray, np.ndarray, list[int], list[bool]],
) -> None:
    # Given trades split into random batches, with the clock ticking between some of them
    timestamps, prices, amounts, cuts, ticks = stream
    aggregator = StreamingAggregator(grace_ms=1_000)
    emitted: list[Candle] = []
    start = 0
    for cut, tick in zip(cuts, ticks, strict=True):
        emitted += aggregator.ingest(
            batch(timestamps[start:cut], prices[start:cut], np.arange(start, cut), amounts=amounts[start:cut])
        )
        if tick and cut < len(timestamps):
            # A clock that never runs ahead of the next trade, so no trade becomes late
            emitted += aggregator.advance(int(timestamps[cut]) + aggregator.grace_ms)
        start = cut

    # When the clock passes the end of every bucket
    emitted += aggregator.advance(int(timestamps[-1]) + 2 * 86_400_000)

    # Then the closed candles are exactly the batch aggregation, none twice
    expected = aggregate_trades_all(timestamps, prices, amounts)
    for timeframe in ALL_TIMEFRAMES:
        ours = sorted((c for c in emitted if c.timeframe is timeframe), key=lambda c: c.open_time)
        assert ours == expected[timeframe].to_candles("binance", "BTC/USDT")
    assert len(set(keys(emitted))) == len(emitted)
    assert aggregator.stats.late_trades == 0


def test_a_trade_in_a_later_minute_closes_the_earlier_candle() -> None:
    # Given a trade in minute 0
    aggregator = StreamingAggregator([Timeframe.M1])
    assert aggregator.ingest(batch([T0 + 5], [10.0], [1])) == []

    # When a trade arrives in minute 1
    closed = aggregator.ingest(batch([T0 + M1 + 5], [11.0], [2]))

    # Then minute 0 is emitted as closed
    assert keys(closed) == [("1m", T0)]


def test_the_clock_closes_a_quiet_market_candle_only_after_the_grace() -> None:
    # Given a trade in minute 0 and a 2 s grace
    aggregator = StreamingAggregator([Timeframe.M1], grace_ms=2_000)
    aggregator.ingest(batch([T0 + 5], [10.0], [1]))

    # When the clock reaches the end of the minute, then passes end + grace
    before = aggregator.advance(T0 + M1 + 1_999)
    after = aggregator.advance(T0 + M1 + 2_000)

    # Then nothing closes within the grace, and the candle closes right after it
    assert before == []
    assert keys(after) == [("1m", T0)]


def test_a_minute_without_trades_emits_no_candle() -> None:
    # Given trades in minutes 0 and 3
    aggregator = StreamingAggregator([Timeframe.M1])
    aggregator.ingest(batch([T0 + 5], [10.0], [1]))

    # When the quiet minutes pass and minute 3 trades
    closed = aggregator.advance(T0 + 3 * M1 + 5_000)
    closed += aggregator.ingest(batch([T0 + 3 * M1 + 10], [11.0], [2]))

    # Then only minute 0 was emitted: no flat candles for minutes 1 and 2
    assert keys(closed) == [("1m", T0)]


def test_a_late_trade_is_dropped_and_counted_never_reopening_a_candle() -> None:
    # Given minute 0 closed by a trade in minute 1
    aggregator = StreamingAggregator([Timeframe.M1, Timeframe.M5])
    aggregator.ingest(batch([T0 + 5, T0 + M1 + 5], [10.0, 11.0], [1, 2]))

    # When a trade stamped in minute 0 arrives afterwards
    closed = aggregator.ingest(batch([T0 + 10], [99.0], [3]))

    # Then it is dropped from every timeframe (the 5m candle too) and counted as late
    assert closed == []
    five = aggregator.forming("BTC/USDT", Timeframe.M5)
    assert five is not None
    assert (five.trades, float(five.high)) == (2, 11.0)
    assert aggregator.stats.late_trades == 1


def test_a_trade_behind_the_clock_is_late() -> None:
    # Given the clock closed minute 0 of a market that never traded
    aggregator = StreamingAggregator([Timeframe.M1], grace_ms=0)
    aggregator.advance(T0 + M1)

    # When a trade stamped in minute 0 arrives
    aggregator.ingest(batch([T0 + 30_000], [10.0], [1]))

    # Then it is late
    assert aggregator.stats.late_trades == 1
    assert aggregator.forming("BTC/USDT", Timeframe.M1) is None


def test_a_replayed_batch_is_dropped_as_duplicates() -> None:
    # Given a batch already ingested
    aggregator = StreamingAggregator([Timeframe.M1])
    first = batch([T0 + 1, T0 + 2, T0 + 3], [10.0, 12.0, 11.0], [101, 102, 103])
    aggregator.ingest(first)

    # When the same batch arrives again (a reconnect replay)
    aggregator.ingest(first)

    # Then the forming candle is unchanged and the duplicates are counted
    candle = aggregator.forming("BTC/USDT", Timeframe.M1)
    assert candle is not None
    assert (candle.trades, float(candle.volume)) == (3, 3.0)
    assert aggregator.stats.duplicates == 3


def test_duplicates_with_unordered_hashed_ids_are_caught_within_the_window() -> None:
    # Given 500 trades with random (unordered) ids, then the last 200 replayed
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 2**62, 500)
    timestamps = T0 + np.arange(500)
    aggregator = StreamingAggregator([Timeframe.M1], dedup_window=256)
    aggregator.ingest(batch(timestamps, np.full(500, 10.0), ids))

    # When the replay arrives
    aggregator.ingest(batch(timestamps[300:], np.full(200, 10.0), ids[300:]))

    # Then every replayed trade is a duplicate
    assert aggregator.stats.duplicates == 200


def test_increasing_ids_older_than_the_window_are_still_duplicates() -> None:
    # Given 10 000 trades with increasing ids and a window of only 64
    aggregator = StreamingAggregator([Timeframe.M1], dedup_window=64)
    timestamps = T0 + np.arange(10_000)
    aggregator.ingest(batch(timestamps, np.full(10_000, 10.0), np.arange(10_000)))

    # When the very first trades are replayed
    aggregator.ingest(batch(timestamps[:10], np.full(10, 10.0), np.arange(10)))

    # Then they are recognised as duplicates, not as late or new trades
    assert aggregator.stats.duplicates == 10
    assert aggregator.stats.late_trades == 0


@settings(max_examples=40, deadline=None)
@given(ids=st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=300))
def test_id_window_matches_a_plain_reference(ids: list[int]) -> None:
    # Given a stream of ids in one minute (any order, with repeats) and a 16-id window
    aggregator = StreamingAggregator([Timeframe.M1], dedup_window=16)
    # A plain reference with the same rule: recent accepted ids, plus the floor for increasing ids
    recent: list[int] = []
    high: int | None = None
    floor: int | None = None
    monotonic = True
    expected = 0
    for trade_id in ids:
        if trade_id in recent or (
            monotonic and floor is not None and len(recent) == 16 and trade_id <= floor
        ):
            expected += 1
            continue
        if high is not None and trade_id < high:
            monotonic = False
        high = trade_id if high is None else max(high, trade_id)
        recent.append(trade_id)
        if len(recent) > 16:
            evicted = recent.pop(0)
            floor = evicted if floor is None else max(floor, evicted)

    # When they are ingested one batch
    aggregator.ingest(batch(np.full(len(ids), T0), np.full(len(ids), 1.0), ids))

    # Then the duplicates counted match the reference
    assert aggregator.stats.duplicates == expected


def test_zero_prices_are_skipped_and_counted_invalid() -> None:
    # Given a batch with one zero-price trade / When ingested
    aggregator = StreamingAggregator([Timeframe.M1])
    aggregator.ingest(batch([T0 + 1, T0 + 2], [0.0, 10.0], [1, 2]))

    # Then it is not in the candle
    candle = aggregator.forming("BTC/USDT", Timeframe.M1)
    assert candle is not None
    assert (candle.trades, float(candle.low)) == (1, 10.0)
    assert aggregator.stats.invalid == 1


def test_forming_shows_the_unfinished_candle_but_it_is_not_emitted() -> None:
    # Given two trades in the current minute
    aggregator = StreamingAggregator([Timeframe.M1], grace_ms=0)
    closed = aggregator.ingest(batch([T0 + 1, T0 + 2], [10.0, 12.0], [1, 2]))

    # When the clock is still inside the minute
    closed += aggregator.advance(T0 + M1 - 1)

    # Then nothing is closed, and forming shows the live candle
    assert closed == []
    candle = aggregator.forming("BTC/USDT", Timeframe.M1)
    assert candle is not None
    assert (candle.open_time, float(candle.close), candle.trades) == (T0, 12.0, 2)


def test_markets_are_independent() -> None:
    # Given a trade on two symbols in minute 0
    aggregator = StreamingAggregator([Timeframe.M1])
    aggregator.ingest(batch([T0 + 1], [10.0], [1], symbol="BTC/USDT"))
    aggregator.ingest(batch([T0 + 1], [20.0], [1], symbol="ETH/USDT"))

    # When only BTC trades in minute 1
    closed = aggregator.ingest(batch([T0 + M1 + 1], [11.0], [2], symbol="BTC/USDT"))

    # Then only BTC's candle closes, and ETH's id 1 was not a duplicate of BTC's
    assert [(c.symbol, c.open_time) for c in closed] == [("BTC/USDT", T0)]
    assert aggregator.stats.duplicates == 0


def test_forming_needs_the_exchange_when_a_symbol_streams_on_two() -> None:
    # Given BTC/USDT streaming on two exchanges
    aggregator = StreamingAggregator([Timeframe.M1])
    aggregator.ingest(batch([T0 + 1], [10.0], [1], exchange="binance"))
    aggregator.ingest(batch([T0 + 1], [10.5], [1], exchange="kraken"))

    # When asked without naming the exchange / Then it refuses to guess
    with pytest.raises(ValueError, match="name the exchange"):
        aggregator.forming("BTC/USDT", Timeframe.M1)
    candle = aggregator.forming("BTC/USDT", Timeframe.M1, exchange="kraken")
    assert candle is not None
    assert float(candle.open) == 10.5


def test_after_resume_stored_candles_are_never_rebuilt() -> None:
    # Given a restart where the 1m candle of minute 0 is already stored
    aggregator = StreamingAggregator([Timeframe.M1, Timeframe.M5], grace_ms=0)
    aggregator.resume_from({("binance", "BTC/USDT", Timeframe.M1): T0})

    # When the exchange replays trades of minute 0 and then trades in minute 1
    aggregator.ingest(batch([T0 + 10, T0 + M1 + 10], [10.0, 11.0], [1, 2]))
    closed = aggregator.advance(T0 + 5 * M1)

    # Then minute 0 is not emitted again; minute 1 and the 5m candle are, from the new trade
    assert keys(closed) == [("1m", T0 + M1), ("5m", T0)]
    assert aggregator.stats.late_trades == 1
