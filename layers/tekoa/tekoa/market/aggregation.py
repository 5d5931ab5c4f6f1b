"""Trades to OHLCV candles, columnar and compiled.

Semantics are ccxt's `Exchange.build_ohlcvc` on trades sorted by time, bit for bit:

- a trade at `ts` belongs to the candle opening at `floor(ts / ms) * ms` (UTC epoch aligned);
- open/close are the first/last trade in input order, high/low the max/min price;
- volume is the sum of amounts in input order, starting from the first amount (so the float
  rounding is the same as ccxt's running sum), count the number of trades;
- trades whose price is zero or NaN are skipped (ccxt's default `skipZeroPrices`);
- only buckets that contain trades produce a candle; `fill_gaps` adds flat candles when a
  consumer wants a dense series.

Input must be ascending by timestamp (exchanges send it so). It is checked in one cheap pass
and, if out of order, stably sorted first: ccxt would instead merge an out-of-order trade into
whatever candle is current, which silently corrupts the earlier candle.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import ALL_TIMEFRAMES, Timeframe

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class CandleArrays:
    """Candles of one timeframe as columns (row i is one candle), ascending by open time."""

    timeframe: Timeframe
    open_time: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    count: I64

    def __len__(self) -> int:
        return int(self.open_time.shape[0])

    def to_candles(self, exchange: str, symbol: str) -> list[Candle]:
        """Domain candles (Decimal money) of these rows, for persistence and events."""
        return [
            Candle.from_floats(
                exchange,
                symbol,
                self.timeframe,
                int(self.open_time[i]),
                (
                    float(self.open[i]),
                    float(self.high[i]),
                    float(self.low[i]),
                    float(self.close[i]),
                    float(self.volume[i]),
                ),
                int(self.count[i]),
            )
            for i in range(len(self))
        ]

    @classmethod
    def empty(cls, timeframe: Timeframe) -> CandleArrays:
        """No candles."""
        floats = np.empty(0, dtype=np.float64)
        ints = np.empty(0, dtype=np.int64)
        return cls(timeframe, ints, floats, floats, floats, floats, floats, ints)


# ---------------------------------------------------------------------------------------------
# kernels


@njit(cache=True)
def _first_unsorted(timestamps: I64) -> int:
    """Index of the first timestamp smaller than its predecessor, or -1 when ascending."""
    for i in range(1, timestamps.shape[0]):
        if timestamps[i] < timestamps[i - 1]:
            return i
    return -1


@njit(cache=True)
def _aggregate_kernel(
    timestamps: I64,
    prices: F64,
    amounts: F64,
    lengths_ms: I64,
    offsets: I64,
    out_time: I64,
    out_ohlcv: F64,
    out_count: I64,
) -> I64:
    """Aggregate sorted trades into K timeframes in one pass; returns the row count per timeframe.

    `lengths_ms` is ascending and every length is a multiple of the first, so a boundary of a
    coarser timeframe is always a boundary of the finest one: per trade only the finest bucket
    is checked (one compare); coarser candles take the finished finest candle's high/low/close
    and count when it ends. Volumes are accumulated per trade for every timeframe so each is
    the same sequential float sum ccxt computes. Timeframe k writes rows
    `offsets[k] .. offsets[k] + counts[k]` of the outputs; `out_ohlcv` has columns o,h,l,c,v.
    """
    k_count = lengths_ms.shape[0]
    counts = np.zeros(k_count, dtype=np.int64)
    opens = np.empty(k_count, dtype=np.int64)  # open time of the running candle per timeframe
    high = np.empty(k_count, dtype=np.float64)
    low = np.empty(k_count, dtype=np.float64)
    close = np.empty(k_count, dtype=np.float64)
    volume = np.empty(k_count, dtype=np.float64)
    trades = np.zeros(k_count, dtype=np.int64)
    first_open = np.empty(k_count, dtype=np.float64)
    finest = lengths_ms[0]
    started = False
    finest_end = 0
    n = timestamps.shape[0]
    for i in range(n):
        price = prices[i]
        if not (price > 0.0) and not (price < 0.0):
            continue  # zero or NaN: ccxt's skipZeroPrices
        ts = timestamps[i]
        amount = amounts[i]
        if started and ts < finest_end:
            # The hot path: same finest candle as the previous trade.
            if price > high[0]:
                high[0] = price
            if price < low[0]:
                low[0] = price
            close[0] = price
            trades[0] += 1
            for k in range(k_count):
                volume[k] += amount
            continue
        # A new finest candle: fold the finished one into the coarser running candles, then
        # close every timeframe whose bucket this trade leaves.
        if started:
            _fold_finest(high, low, close, trades, k_count)
        for k in range(k_count):
            length = lengths_ms[k]
            bucket = (ts // length) * length
            if started and bucket == opens[k]:
                volume[k] += amount
                continue
            if started:
                _emit(
                    k,
                    opens,
                    first_open,
                    high,
                    low,
                    close,
                    volume,
                    trades,
                    offsets,
                    counts,
                    out_time,
                    out_ohlcv,
                    out_count,
                )
            opens[k] = bucket
            first_open[k] = price
            volume[k] = amount
            if k == 0:
                high[0] = price
                low[0] = price
                close[0] = price
                trades[0] = 1
            else:
                # Filled from the finest candle when it finishes (it starts with this trade).
                high[k] = price
                low[k] = price
                close[k] = price
                trades[k] = 0
        started = True
        finest_end = opens[0] + finest
    if started:
        _fold_finest(high, low, close, trades, k_count)
        for k in range(k_count):
            _emit(
                k,
                opens,
                first_open,
                high,
                low,
                close,
                volume,
                trades,
                offsets,
                counts,
                out_time,
                out_ohlcv,
                out_count,
            )
    return counts


@njit(cache=True)
def _fold_finest(high: F64, low: F64, close: F64, trades: I64, k_count: int) -> None:
    """Fold the finished finest candle (slot 0) into every coarser running candle."""
    for k in range(1, k_count):
        if high[0] > high[k]:
            high[k] = high[0]
        if low[0] < low[k]:
            low[k] = low[0]
        close[k] = close[0]
        trades[k] += trades[0]


@njit(cache=True)
def _emit(
    k: int,
    opens: I64,
    first_open: F64,
    high: F64,
    low: F64,
    close: F64,
    volume: F64,
    trades: I64,
    offsets: I64,
    counts: I64,
    out_time: I64,
    out_ohlcv: F64,
    out_count: I64,
) -> None:
    """Write timeframe `k`'s running candle as the next output row of its block."""
    row = offsets[k] + counts[k]
    out_time[row] = opens[k]
    out_ohlcv[row, 0] = first_open[k]
    out_ohlcv[row, 1] = high[k]
    out_ohlcv[row, 2] = low[k]
    out_ohlcv[row, 3] = close[k]
    out_ohlcv[row, 4] = volume[k]
    out_count[row] = trades[k]
    counts[k] += 1


@njit(cache=True)
def _resample_kernel(
    open_time: I64,
    ohlcv: F64,
    count: I64,
    length_ms: int,
    out_time: I64,
    out_ohlcv: F64,
    out_count: I64,
) -> int:
    """Merge consecutive finer candles (ascending) into `length_ms` buckets; returns rows written."""
    rows = -1
    current = np.int64(0)
    for i in range(open_time.shape[0]):
        bucket = (open_time[i] // length_ms) * length_ms
        if rows < 0 or bucket != current:
            rows += 1
            current = bucket
            out_time[rows] = bucket
            out_ohlcv[rows, 0] = ohlcv[i, 0]
            out_ohlcv[rows, 1] = ohlcv[i, 1]
            out_ohlcv[rows, 2] = ohlcv[i, 2]
            out_ohlcv[rows, 3] = ohlcv[i, 3]
            out_ohlcv[rows, 4] = ohlcv[i, 4]
            out_count[rows] = count[i]
        else:
            if ohlcv[i, 1] > out_ohlcv[rows, 1]:
                out_ohlcv[rows, 1] = ohlcv[i, 1]
            if ohlcv[i, 2] < out_ohlcv[rows, 2]:
                out_ohlcv[rows, 2] = ohlcv[i, 2]
            out_ohlcv[rows, 3] = ohlcv[i, 3]
            out_ohlcv[rows, 4] += ohlcv[i, 4]
            out_count[rows] += count[i]
    return rows + 1


@njit(cache=True)
def _fill_gaps_kernel(
    open_time: I64,
    ohlcv: F64,
    count: I64,
    length_ms: int,
    out_time: I64,
    out_ohlcv: F64,
    out_count: I64,
) -> None:
    """Write a dense series: real candles at their slot, flat ones (previous close) between."""
    start = open_time[0]
    slots = out_time.shape[0]
    source = 0
    for row in range(slots):
        slot_time = start + row * length_ms
        out_time[row] = slot_time
        if source < open_time.shape[0] and open_time[source] == slot_time:
            for j in range(5):
                out_ohlcv[row, j] = ohlcv[source, j]
            out_count[row] = count[source]
            source += 1
        else:
            previous_close = out_ohlcv[row - 1, 3]
            out_ohlcv[row, 0] = previous_close
            out_ohlcv[row, 1] = previous_close
            out_ohlcv[row, 2] = previous_close
            out_ohlcv[row, 3] = previous_close
            out_ohlcv[row, 4] = 0.0
            out_count[row] = 0


# ---------------------------------------------------------------------------------------------
# public API


def _as_trade_columns(
    timestamps_ms: npt.ArrayLike, prices: npt.ArrayLike, amounts: npt.ArrayLike
) -> tuple[I64, F64, F64]:
    ts = np.ascontiguousarray(timestamps_ms, dtype=np.int64)
    px = np.ascontiguousarray(prices, dtype=np.float64)
    amt = np.ascontiguousarray(amounts, dtype=np.float64)
    if not ts.ndim == px.ndim == amt.ndim == 1 or not ts.shape == px.shape == amt.shape:
        raise ValueError("timestamps, prices and amounts must be 1-d arrays of one length")
    if ts.shape[0] > 1 and _first_unsorted(ts) >= 0:
        # Stable, so trades sharing a millisecond keep the exchange's order (open/close).
        order = np.argsort(ts, kind="stable")
        ts, px, amt = ts[order], px[order], amt[order]
    return ts, px, amt


def _unpack(timeframe: Timeframe, time: I64, ohlcv: F64, count: I64, start: int, rows: int) -> CandleArrays:
    # Copies, so the caller's result never pins the shared scratch buffers.
    stop = start + rows
    block = ohlcv[start:stop]
    return CandleArrays(
        timeframe=timeframe,
        open_time=time[start:stop].copy(),
        open=block[:, 0].copy(),
        high=block[:, 1].copy(),
        low=block[:, 2].copy(),
        close=block[:, 3].copy(),
        volume=block[:, 4].copy(),
        count=count[start:stop].copy(),
    )


def aggregate_trades_all(
    timestamps_ms: npt.ArrayLike,
    prices: npt.ArrayLike,
    amounts: npt.ArrayLike,
    timeframes: Iterable[Timeframe] = ALL_TIMEFRAMES,
) -> dict[Timeframe, CandleArrays]:
    """Candles of every requested timeframe from one market's trades, in one compiled pass.

    Each timeframe's result equals `aggregate_trades` for it (and ccxt's `build_ohlcvc`)
    exactly, volume included: volumes are summed per trade for every timeframe rather than
    resampled from finer candles, because float addition is not associative.
    """
    ordered = sorted(set(timeframes), key=lambda tf: tf.ms)
    if not ordered:
        return {}
    ts, px, amt = _as_trade_columns(timestamps_ms, prices, amounts)
    if ts.shape[0] == 0:
        return {tf: CandleArrays.empty(tf) for tf in ordered}
    # Every length must be a multiple of the finest (true for the six Timeframes).
    finest = ordered[0].ms
    if any(tf.ms % finest for tf in ordered):
        raise ValueError(f"timeframes {ordered} are not multiples of the finest")
    lengths = np.array([tf.ms for tf in ordered], dtype=np.int64)
    # Row capacity per timeframe: at most one row per trade and per bucket in the span.
    span_first = int(ts[0])
    span_last = int(ts[-1])
    capacities = np.array(
        [min(ts.shape[0], span_last // tf.ms - span_first // tf.ms + 1) for tf in ordered],
        dtype=np.int64,
    )
    offsets = np.zeros(len(ordered), dtype=np.int64)
    offsets[1:] = np.cumsum(capacities)[:-1]
    total = int(capacities.sum())
    out_time = np.empty(total, dtype=np.int64)
    out_ohlcv = np.empty((total, 5), dtype=np.float64)
    out_count = np.empty(total, dtype=np.int64)
    counts = _aggregate_kernel(ts, px, amt, lengths, offsets, out_time, out_ohlcv, out_count)
    return {
        tf: _unpack(tf, out_time, out_ohlcv, out_count, int(offsets[k]), int(counts[k]))
        for k, tf in enumerate(ordered)
    }


def aggregate_trades(
    timestamps_ms: npt.ArrayLike,
    prices: npt.ArrayLike,
    amounts: npt.ArrayLike,
    timeframe: Timeframe,
) -> CandleArrays:
    """Candles of one timeframe from one market's trades (ascending by time); only buckets with
    trades appear. Equal to ccxt's `build_ohlcvc(trades, timeframe)` bit for bit."""
    return aggregate_trades_all(timestamps_ms, prices, amounts, (timeframe,))[timeframe]


def resample(candles: CandleArrays, timeframe: Timeframe) -> CandleArrays:
    """Merge finer candles (e.g. stored 1m) into a coarser timeframe.

    OHLC and count are exact. Volume is the in-order sum of the finer volumes, which can differ
    from a per-trade sum (`aggregate_trades`) in the last bits, since float addition is not
    associative; use `aggregate_trades_all` when trades are at hand.
    """
    if timeframe.ms % candles.timeframe.ms:
        raise ValueError(f"cannot resample {candles.timeframe} into {timeframe}")
    rows = len(candles)
    if rows == 0:
        return CandleArrays.empty(timeframe)
    ohlcv = np.column_stack((candles.open, candles.high, candles.low, candles.close, candles.volume)).astype(
        np.float64
    )
    out_time = np.empty(rows, dtype=np.int64)
    out_ohlcv = np.empty((rows, 5), dtype=np.float64)
    out_count = np.empty(rows, dtype=np.int64)
    written = _resample_kernel(
        np.ascontiguousarray(candles.open_time, dtype=np.int64),
        ohlcv,
        np.ascontiguousarray(candles.count, dtype=np.int64),
        timeframe.ms,
        out_time,
        out_ohlcv,
        out_count,
    )
    return _unpack(timeframe, out_time, out_ohlcv, out_count, 0, written)


def fill_gaps(candles: CandleArrays, until_open_time_ms: int | None = None) -> CandleArrays:
    """A dense series: a flat candle (previous close, zero volume and count) in every empty bucket.

    The series runs from the first candle to the last, or to `until_open_time_ms` (inclusive)
    when given, so a quiet market's tail can be filled up to "now". Nothing is invented before
    the first real candle: there is no price to carry.
    """
    rows = len(candles)
    if rows == 0:
        return candles
    length = candles.timeframe.ms
    first = int(candles.open_time[0])
    last = int(candles.open_time[-1])
    if until_open_time_ms is not None:
        last = max(last, candles.timeframe.open_time(until_open_time_ms))
    slots = (last - first) // length + 1
    ohlcv = np.column_stack((candles.open, candles.high, candles.low, candles.close, candles.volume)).astype(
        np.float64
    )
    out_time = np.empty(slots, dtype=np.int64)
    out_ohlcv = np.empty((slots, 5), dtype=np.float64)
    out_count = np.empty(slots, dtype=np.int64)
    _fill_gaps_kernel(
        np.ascontiguousarray(candles.open_time, dtype=np.int64),
        ohlcv,
        np.ascontiguousarray(candles.count, dtype=np.int64),
        length,
        out_time,
        out_ohlcv,
        out_count,
    )
    return _unpack(candles.timeframe, out_time, out_ohlcv, out_count, 0, slots)


def candles_from_rows(timeframe: Timeframe, rows: Sequence[Sequence[float]]) -> CandleArrays:
    """Columns from ccxt-style rows `[open_time, o, h, l, c, v, (count)]` (count 0 if absent)."""
    if not rows:
        return CandleArrays.empty(timeframe)
    table = np.asarray([list(row[:6]) for row in rows], dtype=np.float64)
    counts = np.asarray([int(row[6]) if len(row) > 6 else 0 for row in rows], dtype=np.int64)
    return CandleArrays(
        timeframe=timeframe,
        open_time=np.asarray([int(row[0]) for row in rows], dtype=np.int64),
        open=table[:, 1].copy(),
        high=table[:, 2].copy(),
        low=table[:, 3].copy(),
        close=table[:, 4].copy(),
        volume=table[:, 5].copy(),
        count=counts,
    )
