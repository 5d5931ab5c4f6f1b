"""Trade aggregation: equal to ccxt's build_ohlcvc and to a plain-Python reference."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tekoa.domain.timeframes import ALL_TIMEFRAMES, Timeframe
from tekoa.market.aggregation import (
    CandleArrays,
    aggregate_trades,
    aggregate_trades_all,
    candles_from_rows,
    fill_gaps,
    resample,
)

T0 = 1_717_200_000_000  # 2024-06-01T00:00Z, aligned to every timeframe
COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "count")

Trades = tuple[np.ndarray, np.ndarray, np.ndarray]


@st.composite
def sorted_trades(draw: st.DrawFn) -> Trades:
    """Ascending trades over up to ~2 days: bursts, ties, gaps, zero prices, awkward floats."""
    n = draw(st.integers(min_value=0, max_value=120))
    steps = draw(
        st.lists(
            st.one_of(
                st.just(0),
                st.integers(0, 5_000),
                st.integers(0, 4 * 3_600_000),
            ),
            min_size=n,
            max_size=n,
        )
    )
    start = T0 + draw(st.integers(0, 86_400_000))
    prices = draw(
        st.lists(
            st.one_of(
                st.just(0.0),
                st.floats(0.0001, 1e6, allow_nan=False),
                st.sampled_from([0.1, 0.2, 0.3, 60_000.01]),
            ),
            min_size=n,
            max_size=n,
        )
    )
    amounts = draw(st.lists(st.floats(0.0, 1e4, allow_nan=False), min_size=n, max_size=n))
    timestamps = start + np.cumsum(np.asarray(steps, dtype=np.int64))
    return (
        timestamps.astype(np.int64),
        np.asarray(prices, dtype=np.float64),
        np.asarray(amounts, dtype=np.float64),
    )


def reference_candles(trades: Trades, timeframe: Timeframe) -> list[list[float]]:
    """Plain Python: group by bucket, OHLC in order, volume summed in order, skip zero prices."""
    rows: list[list[float]] = []
    for ts, price, amount in zip(*(column.tolist() for column in trades), strict=True):
        if price == 0:
            continue
        bucket = ts - ts % timeframe.ms
        if rows and rows[-1][0] == bucket:
            row = rows[-1]
            row[2] = max(row[2], price)
            row[3] = min(row[3], price)
            row[4] = price
            row[5] = row[5] + amount
            row[6] += 1
        else:
            rows.append([bucket, price, price, price, price, amount, 1])
    return rows


def assert_same(ours: CandleArrays, expected: CandleArrays) -> None:
    for column in COLUMNS:
        np.testing.assert_array_equal(getattr(ours, column), getattr(expected, column), column)


@settings(max_examples=60, deadline=None)
@given(trades=sorted_trades(), timeframe=st.sampled_from(ALL_TIMEFRAMES))
def test_aggregate_trades_equals_ccxt_build_ohlcvc_bit_for_bit(trades: Trades, timeframe: Timeframe) -> None:
    # Given random ascending trades as ccxt trade dicts
    timestamps, prices, amounts = trades
    as_dicts = [
        {"timestamp": int(t), "price": float(p), "amount": float(a)}
        for t, p, a in zip(timestamps, prices, amounts, strict=True)
    ]
    expected = candles_from_rows(timeframe, ccxt.Exchange().build_ohlcvc(as_dicts, timeframe.value))

    # When they are aggregated by the kernel
    ours = aggregate_trades(timestamps, prices, amounts, timeframe)

    # Then every column is identical, volume included
    assert_same(ours, expected)


@settings(max_examples=60, deadline=None)
@given(trades=sorted_trades())
def test_all_timeframes_in_one_pass_equal_the_plain_reference(trades: Trades) -> None:
    # Given random ascending trades
    # When all six timeframes are aggregated together
    result = aggregate_trades_all(*trades)

    # Then each equals the plain-Python reference for that timeframe alone
    for timeframe in ALL_TIMEFRAMES:
        assert_same(result[timeframe], candles_from_rows(timeframe, reference_candles(trades, timeframe)))


def test_out_of_order_trades_are_sorted_stably_before_aggregating() -> None:
    # Given trades where one arrives out of order and two share a millisecond
    timestamps = np.array([T0 + 30_000, T0 + 10_000, T0 + 10_000, T0 + 70_000])
    prices = np.array([3.0, 1.0, 2.0, 4.0])
    amounts = np.array([1.0, 1.0, 1.0, 1.0])

    # When aggregated into 1m candles
    candles = aggregate_trades(timestamps, prices, amounts, Timeframe.M1)

    # Then the first minute opens with the earliest trade (ties in input order) and closes at 3.0
    assert candles.open.tolist() == [1.0, 4.0]
    assert candles.close.tolist() == [3.0, 4.0]
    assert candles.count.tolist() == [3, 1]


def test_no_trades_give_no_candles() -> None:
    # Given no trades / When aggregated / Then every timeframe is empty
    result = aggregate_trades_all(np.array([], dtype=np.int64), np.array([]), np.array([]))
    assert all(len(result[tf]) == 0 for tf in ALL_TIMEFRAMES)


def test_quiet_buckets_produce_no_candle_until_fill_gaps_inserts_flat_ones() -> None:
    # Given trades in minutes 0 and 3 only
    timestamps = np.array([T0 + 1_000, T0 + 2_000, T0 + 3 * 60_000 + 5])
    candles = aggregate_trades(timestamps, [10.0, 12.0, 11.0], [1.0, 2.0, 3.0], Timeframe.M1)
    assert candles.open_time.tolist() == [T0, T0 + 180_000]

    # When the gaps are filled
    dense = fill_gaps(candles)

    # Then minutes 1 and 2 are flat at the previous close with zero volume and trades
    assert dense.open_time.tolist() == [T0 + i * 60_000 for i in range(4)]
    assert dense.close.tolist() == [12.0, 12.0, 12.0, 11.0]
    assert dense.high[1:3].tolist() == [12.0, 12.0]
    assert dense.volume.tolist() == [3.0, 0.0, 0.0, 3.0]
    assert dense.count.tolist() == [2, 0, 0, 1]


def test_fill_gaps_extends_a_quiet_tail_up_to_the_given_open_time() -> None:
    # Given one candle at minute 0
    candles = aggregate_trades(np.array([T0 + 10]), [5.0], [1.0], Timeframe.M1)

    # When filled until minute 2
    dense = fill_gaps(candles, until_open_time_ms=T0 + 2 * 60_000 + 59_999)

    # Then minutes 1 and 2 exist, flat at 5.0
    assert dense.open_time.tolist() == [T0, T0 + 60_000, T0 + 120_000]
    assert dense.open.tolist() == [5.0, 5.0, 5.0]


@settings(max_examples=40, deadline=None)
@given(trades=sorted_trades(), timeframe=st.sampled_from(ALL_TIMEFRAMES[1:]))
def test_resampling_1m_candles_matches_aggregating_trades(trades: Trades, timeframe: Timeframe) -> None:
    # Given 1m candles built from trades
    one_minute = aggregate_trades(*trades, Timeframe.M1)

    # When resampled into a higher timeframe
    resampled = resample(one_minute, timeframe)

    # Then OHLC and counts are exact and volume equal up to summation order
    direct = aggregate_trades(*trades, timeframe)
    for column in ("open_time", "open", "high", "low", "close", "count"):
        np.testing.assert_array_equal(getattr(resampled, column), getattr(direct, column))
    np.testing.assert_allclose(resampled.volume, direct.volume, rtol=1e-12, atol=1e-9)


def test_rows_become_candles_with_the_decimals_the_floats_stand_for() -> None:
    # Given a candle whose prices are not exact in binary
    candles = aggregate_trades(np.array([T0, T0 + 1]), [0.1, 0.3], [0.1, 0.2], Timeframe.M1)

    # When converted to domain candles
    (candle,) = candles.to_candles("binance", "BTC/USDT")

    # Then money is each float to 15 significant digits (the float sum 0.1 + 0.2 loses its noise)
    assert (candle.open, candle.high, candle.close) == (Decimal("0.1"), Decimal("0.3"), Decimal("0.3"))
    assert candle.volume == Decimal("0.3")
    assert (candle.exchange, candle.symbol, candle.trades) == ("binance", "BTC/USDT", 2)
