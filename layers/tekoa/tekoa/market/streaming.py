"""Live candles from trade batches: many markets, all timeframes, each candle emitted once.

Rules (the contract the market-stream service and its consumers rely on):

- **Closing.** A candle closes when a trade of the same market lands in a later bucket, or
  when the clock passes its end: `advance(now_ms)` closes every candle whose
  `close_time <= now_ms - grace_ms`, so a quiet market's candle still closes on time. The grace
  covers exchange and network latency, so trades stamped just before a boundary still count.
- **Quiet buckets emit nothing.** A bucket without trades produces no candle (there is no
  trade to say what happened); consumers wanting a dense series call
  `tekoa.market.aggregation.fill_gaps`, which inserts flat candles at the previous close.
- **Late trades.** A trade whose finest-timeframe bucket has already closed (by a later
  trade or by the clock) is dropped from every timeframe and counted in `stats.late_trades`;
  an emitted candle is never reopened, and all timeframes stay built from the same trades.
- **Duplicates.** A trade id seen among the last `dedup_window` accepted ids of its market is
  dropped and counted (`stats.duplicates`). While a market's ids have only ever increased
  (most exchanges), an id at or below the oldest id that left the window is also a duplicate,
  so a replay of any age is caught; markets with hashed (unordered) ids fall back on the
  window, and anything older than it is almost always late anyway.
- **Invalid trades.** A zero or NaN price is skipped (`stats.invalid`), as ccxt does.
- **Restart.** `resume_from` seeds the last stored closed open time per
  (exchange, symbol, timeframe); trades in those buckets or earlier never rebuild them.
- **Exact.** With sorted, duplicate-free input the closed candles equal
  `aggregate_trades_all` on the same trades (and so ccxt's `build_ohlcvc`), bit for bit.

Per batch the work is one compiled call; Python only runs per closed candle (rare), where the
floats become `Candle`s with Decimal money.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import ALL_TIMEFRAMES, Timeframe
from tekoa.market.sources import TradeBatch

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

_NONE = np.iinfo(np.int64).min  # "no value" for open times, watermarks and empty hash slots
_FIB = -7046029254386353131  # 0x9E3779B97F4A7C15 as int64: Fibonacci hashing

# Columns of the per-market scalar state `_market[m, :]`.
_ACCEPT_FROM = 0  # trades before this ms are late (open of the newest finest bucket)
_HIGH_ID = 1  # highest accepted trade id
_FLOOR_ID = 2  # highest id evicted from the dedup window
_MONOTONIC = 3  # 1 while every accepted id was higher than all before it
_RING_POS = 4  # next ring slot to write
_RING_LEN = 5  # ids currently in the ring
_TRADES_IN = 6
_DUPLICATES = 7
_LATE = 8
_INVALID = 9
_EMITTED = 10
_SCALARS = 11


@dataclass(frozen=True, slots=True)
class StreamStats:
    """Counters since start: every trade in is exactly one of accepted/duplicate/late/invalid."""

    trades_in: int
    duplicates: int
    late_trades: int
    invalid: int
    candles_emitted: int

    @property
    def accepted(self) -> int:
        """Trades that went into candles."""
        return self.trades_in - self.duplicates - self.late_trades - self.invalid


# ---------------------------------------------------------------------------------------------
# kernels: an open-addressing id set (linear probing, backward-shift deletion) plus candles


@njit(cache=True)
def _slot(key: int, shift: int, mask: int) -> int:
    return ((key * _FIB) >> shift) & mask


@njit(cache=True)
def _set_contains(table: I64, key: int, shift: int, mask: int) -> bool:
    i = _slot(key, shift, mask)
    while True:
        current = table[i]
        if current == key:
            return True
        if current == _NONE:
            return False
        i = (i + 1) & mask


@njit(cache=True)
def _set_insert(table: I64, key: int, shift: int, mask: int) -> None:
    i = _slot(key, shift, mask)
    while table[i] != _NONE:
        if table[i] == key:
            return
        i = (i + 1) & mask
    table[i] = key


@njit(cache=True)
def _set_delete(table: I64, key: int, shift: int, mask: int) -> None:
    i = _slot(key, shift, mask)
    while table[i] != key:
        if table[i] == _NONE:
            return
        i = (i + 1) & mask
    # Backward shift: pull later entries of the probe run into the hole so lookups that
    # stop at an empty slot stay correct without tombstones.
    j = i
    while True:
        j = (j + 1) & mask
        if table[j] == _NONE:
            break
        home = _slot(table[j], shift, mask)
        # Does the entry's home lie cyclically in (i, j]? Then it must stay where it is.
        stays = (i < home <= j) if i <= j else (home > i or home <= j)
        if stays:
            continue
        table[i] = table[j]
        i = j
    table[i] = _NONE


@njit(cache=True)
def _is_duplicate(market: I64, table: I64, ring: I64, trade_id: int, shift: int, mask: int) -> bool:
    """Check `trade_id` against the market's recent ids and remember it when new."""
    if _set_contains(table, trade_id, shift, mask):
        return True
    monotonic = market[_MONOTONIC] == 1
    if monotonic and market[_RING_LEN] == ring.shape[0] and trade_id <= market[_FLOOR_ID]:
        return True  # older than the window on an exchange whose ids only grow: a replay
    if trade_id < market[_HIGH_ID]:
        market[_MONOTONIC] = 0
    else:
        market[_HIGH_ID] = trade_id
    pos = market[_RING_POS]
    if market[_RING_LEN] == ring.shape[0]:
        evicted = ring[pos]
        _set_delete(table, evicted, shift, mask)
        if evicted > market[_FLOOR_ID]:
            market[_FLOOR_ID] = evicted
    else:
        market[_RING_LEN] += 1
    ring[pos] = trade_id
    market[_RING_POS] = (pos + 1) % ring.shape[0]
    _set_insert(table, trade_id, shift, mask)
    return False


@njit(cache=True)
def _emit(
    k: int,
    open_time: int,
    ohlcv: F64,
    count: int,
    out_int: I64,
    out_float: F64,
    row: int,
) -> None:
    out_int[row, 0] = k
    out_int[row, 1] = open_time
    out_int[row, 2] = count
    for j in range(5):
        out_float[row, j] = ohlcv[j]


@njit(cache=True)
def _ingest_kernel(
    timestamps: I64,
    prices: F64,
    amounts: F64,
    trade_ids: I64,
    lengths_ms: I64,
    clock_floor: int,
    market: I64,
    forming_open: I64,
    forming_count: I64,
    forming_ohlcv: F64,
    closed_open: I64,
    table: I64,
    ring: I64,
    shift: int,
    mask: int,
    out_int: I64,
    out_float: F64,
) -> int:
    """Feed one market's batch; closed candles go to the outputs (rows: tf index, open, count |
    o,h,l,c,v). Returns the number of rows written (at most K per trade)."""
    k_count = lengths_ms.shape[0]
    rows = 0
    for i in range(timestamps.shape[0]):
        market[_TRADES_IN] += 1
        if _is_duplicate(market, table, ring, trade_ids[i], shift, mask):
            market[_DUPLICATES] += 1
            continue
        price = prices[i]
        if not (price > 0.0) and not (price < 0.0):
            market[_INVALID] += 1
            continue
        ts = timestamps[i]
        if ts < market[_ACCEPT_FROM] or ts < clock_floor:
            market[_LATE] += 1
            continue
        amount = amounts[i]
        for k in range(k_count):
            length = lengths_ms[k]
            bucket = (ts // length) * length
            if bucket <= closed_open[k]:
                continue  # already stored before a restart: never rebuilt
            if forming_count[k] > 0 and bucket == forming_open[k]:
                row_ohlcv = forming_ohlcv[k]
                if price > row_ohlcv[1]:
                    row_ohlcv[1] = price
                if price < row_ohlcv[2]:
                    row_ohlcv[2] = price
                row_ohlcv[3] = price
                row_ohlcv[4] += amount
                forming_count[k] += 1
                continue
            if forming_count[k] > 0:
                # Invariant from the late rule: a new bucket is always a later one.
                _emit(k, forming_open[k], forming_ohlcv[k], forming_count[k], out_int, out_float, rows)
                rows += 1
                closed_open[k] = forming_open[k]
            forming_open[k] = bucket
            forming_count[k] = 1
            forming_ohlcv[k, 0] = price
            forming_ohlcv[k, 1] = price
            forming_ohlcv[k, 2] = price
            forming_ohlcv[k, 3] = price
            forming_ohlcv[k, 4] = amount
        finest_bucket = (ts // lengths_ms[0]) * lengths_ms[0]
        if finest_bucket > market[_ACCEPT_FROM]:
            market[_ACCEPT_FROM] = finest_bucket
    market[_EMITTED] += rows
    return rows


@njit(cache=True)
def _advance_kernel(
    markets: int,
    lengths_ms: I64,
    cutoff_ms: int,
    market: I64,
    forming_open: I64,
    forming_count: I64,
    forming_ohlcv: F64,
    closed_open: I64,
    out_int: I64,
    out_float: F64,
    out_market: I64,
) -> int:
    """Close every forming candle (all markets) whose end is at or before `cutoff_ms`."""
    rows = 0
    for m in range(markets):
        for k in range(lengths_ms.shape[0]):
            if forming_count[m, k] > 0 and forming_open[m, k] + lengths_ms[k] <= cutoff_ms:
                _emit(
                    k,
                    forming_open[m, k],
                    forming_ohlcv[m, k],
                    forming_count[m, k],
                    out_int,
                    out_float,
                    rows,
                )
                out_market[rows] = m
                rows += 1
                closed_open[m, k] = forming_open[m, k]
                forming_count[m, k] = 0
                market[m, _EMITTED] += 1
    return rows


# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _MarketState:
    """Mutable per-market arrays (row m = market m), shared with the kernels without copies."""

    market: I64  # (M, _SCALARS)
    forming_open: I64  # (M, K)
    forming_count: I64  # (M, K); 0 = nothing forming
    forming_ohlcv: F64  # (M, K, 5)
    closed_open: I64  # (M, K) open time of the last closed candle
    table: I64  # (M, table size) id hash set
    ring: I64  # (M, ring size) ids in arrival order, for eviction

    @classmethod
    def create(cls, capacity: int, k: int, table_size: int, ring_size: int) -> _MarketState:
        market = np.zeros((capacity, _SCALARS), dtype=np.int64)
        market[:, _ACCEPT_FROM] = _NONE
        market[:, _HIGH_ID] = _NONE
        market[:, _FLOOR_ID] = _NONE
        market[:, _MONOTONIC] = 1
        return cls(
            market=market,
            forming_open=np.full((capacity, k), _NONE, dtype=np.int64),
            forming_count=np.zeros((capacity, k), dtype=np.int64),
            forming_ohlcv=np.zeros((capacity, k, 5), dtype=np.float64),
            closed_open=np.full((capacity, k), _NONE, dtype=np.int64),
            table=np.full((capacity, table_size), _NONE, dtype=np.int64),
            ring=np.zeros((capacity, ring_size), dtype=np.int64),
        )

    def copy_from(self, other: _MarketState, used: int) -> None:
        for name in self.__slots__:
            getattr(self, name)[:used] = getattr(other, name)[:used]


class StreamingAggregator:
    """Builds candles of every timeframe for many markets from trade batches, as trades arrive.

    Markets are keyed by (exchange, symbol) and appear on their first batch. See the module
    docstring for the closing, late-trade, duplicate and restart rules.
    """

    def __init__(
        self,
        timeframes: Iterable[Timeframe] = ALL_TIMEFRAMES,
        *,
        grace_ms: int = 2_000,
        dedup_window: int = 4_096,
    ) -> None:
        """`grace_ms`: how long after a bucket ends the clock waits before closing it.
        `dedup_window`: recent trade ids remembered per market (rounded up to a power of 2)."""
        ordered = sorted(set(timeframes), key=lambda tf: tf.ms)
        if not ordered:
            raise ValueError("at least one timeframe is needed")
        if any(tf.ms % ordered[0].ms for tf in ordered):
            raise ValueError("every timeframe must be a multiple of the finest")
        if grace_ms < 0:
            raise ValueError("grace_ms must not be negative")
        self.timeframes: tuple[Timeframe, ...] = tuple(ordered)
        self.grace_ms = grace_ms
        window = 1 << max(4, int(dedup_window - 1).bit_length())
        self._ring_size = window
        table_bits = (window * 2).bit_length() - 1  # load factor at most 1/2
        self._table_size = 1 << table_bits
        self._shift = 64 - table_bits
        self._mask = self._table_size - 1
        self._lengths = np.array([tf.ms for tf in ordered], dtype=np.int64)
        self._index: dict[tuple[str, str], int] = {}
        self._keys: list[tuple[str, str]] = []
        self._clock_floor = int(_NONE)
        self._capacity = 8
        self._state = _MarketState.create(self._capacity, len(ordered), self._table_size, self._ring_size)
        self._out_int = np.empty((0, 3), dtype=np.int64)
        self._out_float = np.empty((0, 5), dtype=np.float64)

    # -- state --------------------------------------------------------------------------------

    def _grow(self) -> None:
        """Double the per-market state (markets are few; this is rare)."""
        used = self._capacity
        self._capacity *= 2
        fresh = _MarketState.create(self._capacity, len(self.timeframes), self._table_size, self._ring_size)
        fresh.copy_from(self._state, used)
        self._state = fresh

    def _market_index(self, exchange: str, symbol: str) -> int:
        key = (exchange, symbol)
        index = self._index.get(key)
        if index is None:
            index = len(self._keys)
            if index == self._capacity:
                self._grow()
            self._index[key] = index
            self._keys.append(key)
        return index

    def _ensure_output(self, rows: int) -> None:
        if self._out_int.shape[0] < rows:
            size = max(rows, 2 * self._out_int.shape[0], 64)
            self._out_int = np.empty((size, 3), dtype=np.int64)
            self._out_float = np.empty((size, 5), dtype=np.float64)

    def _candles(self, rows: int, markets: I64 | None, single: int) -> list[Candle]:
        out: list[Candle] = []
        ints = self._out_int[:rows].tolist()
        floats = self._out_float[:rows].tolist()
        for row in range(rows):
            k, open_time, count = ints[row]
            o, h, low, c, v = floats[row]
            exchange, symbol = self._keys[single if markets is None else int(markets[row])]
            out.append(
                Candle.from_floats(exchange, symbol, self.timeframes[k], open_time, (o, h, low, c, v), count)
            )
        return out

    # -- public API ---------------------------------------------------------------------------

    def ingest(self, batch: TradeBatch) -> list[Candle]:
        """Feed one market's trades; returns the candles those trades closed, oldest first."""
        m = self._market_index(batch.exchange, batch.symbol)
        n = len(batch)
        if n == 0:
            return []
        self._ensure_output(n * len(self.timeframes))
        rows = _ingest_kernel(
            np.ascontiguousarray(batch.timestamps_ms, dtype=np.int64),
            np.ascontiguousarray(batch.prices, dtype=np.float64),
            np.ascontiguousarray(batch.amounts, dtype=np.float64),
            np.ascontiguousarray(batch.trade_ids, dtype=np.int64),
            self._lengths,
            self._clock_floor,
            self._state.market[m],
            self._state.forming_open[m],
            self._state.forming_count[m],
            self._state.forming_ohlcv[m],
            self._state.closed_open[m],
            self._state.table[m],
            self._state.ring[m],
            self._shift,
            self._mask,
            self._out_int,
            self._out_float,
        )
        return self._candles(rows, None, m) if rows else []

    def advance(self, now_ms: int) -> list[Candle]:
        """Close, on every market, each candle that ended at or before `now_ms - grace_ms`.

        Also makes trades in those buckets late from now on. Time never moves backwards: an
        earlier `now_ms` than before changes nothing.
        """
        cutoff = int(now_ms) - self.grace_ms
        finest = int(self._lengths[0])
        self._clock_floor = max(self._clock_floor, cutoff - cutoff % finest)
        markets = len(self._keys)
        if markets == 0:
            return []
        self._ensure_output(markets * len(self.timeframes))
        out_market = np.empty(self._out_int.shape[0], dtype=np.int64)
        rows = _advance_kernel(
            markets,
            self._lengths,
            cutoff,
            self._state.market,
            self._state.forming_open,
            self._state.forming_count,
            self._state.forming_ohlcv,
            self._state.closed_open,
            self._out_int,
            self._out_float,
            out_market,
        )
        return self._candles(rows, out_market, -1) if rows else []

    def forming(self, symbol: str, timeframe: Timeframe, *, exchange: str | None = None) -> Candle | None:
        """The candle still forming (for live display), or None if its bucket has no trade yet.

        `exchange` may be omitted when only one exchange streams `symbol`.
        """
        if exchange is None:
            exchanges = [ex for ex, sym in self._keys if sym == symbol]
            if len(exchanges) > 1:
                raise ValueError(f"{symbol} streams on {exchanges}: name the exchange")
            if not exchanges:
                return None
            exchange = exchanges[0]
        m = self._index.get((exchange, symbol))
        if m is None or timeframe not in self.timeframes:
            return None
        k = self.timeframes.index(timeframe)
        if self._state.forming_count[m, k] == 0:
            return None
        o, h, low, c, v = (float(x) for x in self._state.forming_ohlcv[m, k])
        return Candle.from_floats(
            exchange,
            symbol,
            timeframe,
            int(self._state.forming_open[m, k]),
            (o, h, low, c, v),
            int(self._state.forming_count[m, k]),
        )

    def resume_from(self, last_closed: Mapping[tuple[str, str, Timeframe], int]) -> None:
        """Seed stored state after a restart: {(exchange, symbol, timeframe): last closed open ms}.

        Trades in those buckets (or earlier) never rebuild or re-emit them; trades before the
        end of the finest stored candle are late for every timeframe. A coarser candle whose
        bucket began before the restart is built from the trades seen since (the stream cannot
        replay the rest); the service should recompute it from stored finer candles
        (`aggregation.resample`) or a backfill when exactness matters.
        """
        for (exchange, symbol, timeframe), open_time in last_closed.items():
            if timeframe not in self.timeframes:
                continue
            m = self._market_index(exchange, symbol)
            k = self.timeframes.index(timeframe)
            aligned = timeframe.open_time(int(open_time))
            self._state.closed_open[m, k] = max(int(self._state.closed_open[m, k]), aligned)
            if self._state.forming_count[m, k] > 0 and self._state.forming_open[m, k] <= aligned:
                self._state.forming_count[m, k] = 0
            if k == 0:
                accept_from = aligned + timeframe.ms
                self._state.market[m, _ACCEPT_FROM] = max(
                    int(self._state.market[m, _ACCEPT_FROM]), accept_from
                )

    @property
    def stats(self) -> StreamStats:
        """Counters summed over all markets."""
        return self._stats(self._state.market[: len(self._keys)])

    def stats_for(self, exchange: str, symbol: str) -> StreamStats:
        """Counters of one market (zeros if it has not been seen)."""
        m = self._index.get((exchange, symbol))
        if m is None:
            return StreamStats(0, 0, 0, 0, 0)
        return self._stats(self._state.market[m : m + 1])

    @staticmethod
    def _stats(rows: I64) -> StreamStats:
        totals = rows.sum(axis=0) if rows.shape[0] else np.zeros(_SCALARS, dtype=np.int64)
        return StreamStats(
            trades_in=int(totals[_TRADES_IN]),
            duplicates=int(totals[_DUPLICATES]),
            late_trades=int(totals[_LATE]),
            invalid=int(totals[_INVALID]),
            candles_emitted=int(totals[_EMITTED]),
        )

    @property
    def markets(self) -> tuple[tuple[str, str], ...]:
        """(exchange, symbol) of every market seen, in order of first appearance."""
        return tuple(self._keys)
