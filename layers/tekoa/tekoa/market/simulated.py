"""A deterministic simulated exchange: the default market source of the local cloud and tests.

Trades are a pure function of (seed, symbol, UTC day): each day is generated from its own
seeded random stream, so the trades at a given time are the same whether they are streamed
live, replayed accelerated, or served as REST history, and `fetch_ohlcv` returns exactly the
candles the stream would have produced for that window (both go through
`aggregate_trades`).

The model, per symbol:
- a daily anchor price following a mean-reverting log walk around the symbol's base price
  (so prices stay plausible for decades of simulated time);
- within a day, one-minute log returns with GARCH(1,1) volatility clustering, rare jumps,
  and a Brownian-bridge correction so the day ends exactly on the next day's anchor (days join
  without gaps; the volatility state restarts each day, a deliberate simplification);
- Poisson trade arrivals with an intraday activity pattern (busiest around 15:00 UTC) and
  more trading when volatility is high; log-normal trade sizes;
- prices rounded to the tick, amounts to the lot; trade ids increase with time.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tekoa.domain.timeframes import Timeframe
from tekoa.errors import NotFound
from tekoa.exchanges.rules import MarketRules
from tekoa.exchanges.simulated import profile_for, simulated_rules
from tekoa.market.aggregation import aggregate_trades
from tekoa.market.sources import OhlcvRows, TradeBatch

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

DAY_MS = 86_400_000
MINUTE_MS = 60_000
_MINUTES = 1_440
ORIGIN_MS = 1_577_836_800_000  # 2020-01-01T00:00Z: simulated history starts here
_HORIZON_DAYS = 10_000  # anchors precomputed through ~2047
_IDS_PER_DAY = 100_000_000  # trade id = day number * this + index: increasing with time
_ANCHOR_PERSISTENCE = 0.98  # daily mean reversion of the log anchor: stationary sd ~ 5 x daily vol
_GARCH_ALPHA = 0.08
_GARCH_BETA = 0.90
_JUMPS_PER_DAY = 2.0
_JUMP_SCALE = 8.0  # jump sd in units of the per-minute base volatility
_MICRO_NOISE = 0.3  # intra-minute noise sd relative to the minute's volatility


def _symbol_key(symbol: str) -> int:
    # Stable across processes (unlike hash()), so a seed means the same trades everywhere.
    return int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True, slots=True)
class _DayTrades:
    timestamps_ms: I64
    prices: F64
    amounts: F64
    trade_ids: I64


class SimulatedExchange:
    """A `MarketSource` of seeded synthetic trades; see the module docstring for the model.

    `speed` is simulated seconds per wall second: 1 streams in real time, 60 replays an hour a
    minute, and `math.inf` runs a virtual clock that streams as fast as the consumer reads (for
    tests and backfills). The clock starts at `start_ms` (default: now) and stops at `stop_ms`
    when given, which ends the stream.
    """

    def __init__(
        self,
        symbols: Sequence[str] = ("BTC/USDT", "ETH/USDT", "SOL/USDT"),
        *,
        seed: int = 0,
        speed: float = 1.0,
        start_ms: int | None = None,
        stop_ms: int | None = None,
        exchange: str = "simulated",
        batch_ms: int = 1_000,
        history_days_per_call: int = 2,
    ) -> None:
        """`batch_ms`: simulated time per batch in virtual-clock mode (and the live polling step).
        `history_days_per_call`: page cap of `fetch_ohlcv`, like a real venue's page size."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        if not symbols:
            raise ValueError("at least one symbol")
        self.exchange = exchange
        self.symbols: tuple[str, ...] = tuple(dict.fromkeys(symbols))
        self.seed = seed
        self.speed = speed
        self.start_ms = int(time.time() * 1000) if start_ms is None else int(start_ms)
        if self.start_ms < ORIGIN_MS:
            raise ValueError("simulated history starts at 2020-01-01")
        self.stop_ms = stop_ms
        self.batch_ms = batch_ms
        self.history_days_per_call = history_days_per_call
        self._virtual_now = self.start_ms
        self._wall_start = time.monotonic()
        self._anchors: dict[str, F64] = {}
        self._days: OrderedDict[tuple[str, int], _DayTrades] = OrderedDict()
        self._closed = False

    # -- metadata and clock --------------------------------------------------------------------

    async def market_rules(self, symbols: Sequence[str]) -> list[MarketRules]:
        """What orders on `symbols` must respect: ticks and lots the prices and amounts sit on."""
        return [simulated_rules(symbol) for symbol in symbols]

    def now_ms(self) -> int:
        """The simulated clock: wall time scaled by `speed`, or the virtual stream position."""
        if math.isinf(self.speed):
            now = self._virtual_now
        else:
            elapsed = time.monotonic() - self._wall_start
            now = self.start_ms + int(elapsed * 1000 * self.speed)
        return now if self.stop_ms is None else min(now, self.stop_ms)

    # -- generator -----------------------------------------------------------------------------

    def _anchor_log_prices(self, symbol: str) -> F64:
        """Log price at the start of each day since ORIGIN_MS (mean-reverting around the base)."""
        cached = self._anchors.get(symbol)
        if cached is not None:
            return cached
        profile = profile_for(symbol)
        rng = np.random.default_rng([self.seed, _symbol_key(symbol), 0])
        shocks = rng.standard_normal(_HORIZON_DAYS + 1) * profile.daily_volatility
        deviation = np.empty(_HORIZON_DAYS + 1, dtype=np.float64)
        level = 0.0
        for day in range(_HORIZON_DAYS + 1):
            deviation[day] = level
            level = _ANCHOR_PERSISTENCE * level + float(shocks[day])
        anchors = math.log(profile.base_price) + deviation
        self._anchors[symbol] = anchors
        return anchors

    def _day(self, symbol: str, day: int) -> _DayTrades:
        """All trades of `symbol` on day number `day` since ORIGIN_MS (cached, LRU)."""
        key = (symbol, day)
        cached = self._days.get(key)
        if cached is not None:
            self._days.move_to_end(key)
            return cached
        trades = self._generate_day(symbol, day)
        self._days[key] = trades
        if len(self._days) > 4 * len(self.symbols) + 8:
            self._days.popitem(last=False)
        return trades

    def _generate_day(self, symbol: str, day: int) -> _DayTrades:
        if not 0 <= day < _HORIZON_DAYS:
            raise ValueError("outside the simulated history (2020 to ~2047)")
        profile = profile_for(symbol)
        anchors = self._anchor_log_prices(symbol)
        rng = np.random.default_rng([self.seed, _symbol_key(symbol), 1, day])
        minute = np.arange(_MINUTES)
        # Activity peaks mid-afternoon UTC (US open overlapping Europe); mean 1 over the day.
        activity = 1.0 + 0.6 * np.cos(2 * np.pi * (minute / _MINUTES - 15 / 24))

        base_var = profile.daily_volatility**2 / _MINUTES
        omega = base_var * (1.0 - _GARCH_ALPHA - _GARCH_BETA)
        shocks = rng.standard_normal(_MINUTES)
        variance = np.empty(_MINUTES, dtype=np.float64)
        returns = np.empty(_MINUTES, dtype=np.float64)
        h = base_var
        for m in range(_MINUTES):  # GARCH is a recursion: 1440 steps a day is cheap enough
            variance[m] = h
            r = math.sqrt(h) * float(shocks[m])
            returns[m] = r
            h = omega + _GARCH_ALPHA * r * r + _GARCH_BETA * h
        jumps = rng.random(_MINUTES) < _JUMPS_PER_DAY / _MINUTES
        returns += jumps * rng.standard_normal(_MINUTES) * _JUMP_SCALE * math.sqrt(base_var)
        # Brownian-bridge correction: the day ends exactly on the next day's anchor.
        path = np.cumsum(returns)
        drift = path[-1] - (anchors[day + 1] - anchors[day])
        path -= drift * (minute + 1) / _MINUTES
        minute_start = anchors[day] + np.concatenate(([0.0], path[:-1]))
        minute_end = anchors[day] + path

        vol_ratio = np.sqrt(variance / base_var)
        intensity = profile.trades_per_second * 60.0 * activity * np.clip(vol_ratio, 0.5, 3.0)
        per_minute = rng.poisson(intensity)
        total = int(per_minute.sum())
        trade_minute = np.repeat(minute, per_minute)
        offset = rng.integers(0, MINUTE_MS, total)
        order = np.lexsort((offset, trade_minute))
        trade_minute, offset = trade_minute[order], offset[order]
        fraction = offset / MINUTE_MS
        log_price = (
            minute_start[trade_minute]
            + fraction * (minute_end[trade_minute] - minute_start[trade_minute])
            + rng.standard_normal(total) * _MICRO_NOISE * np.sqrt(variance[trade_minute])
        )
        tick = 10.0**-profile.price_decimals
        prices = np.maximum(np.round(np.exp(log_price), profile.price_decimals), tick)
        lot = 10.0**-profile.amount_decimals
        median_amount = profile.median_notional / prices
        amounts = np.maximum(
            np.round(median_amount * rng.lognormal(0.0, 1.2, total), profile.amount_decimals), lot
        )
        day_start = ORIGIN_MS + day * DAY_MS
        return _DayTrades(
            timestamps_ms=(day_start + trade_minute * MINUTE_MS + offset).astype(np.int64),
            prices=prices.astype(np.float64),
            amounts=amounts.astype(np.float64),
            trade_ids=(day * _IDS_PER_DAY + 1 + np.arange(total)).astype(np.int64),
        )

    def trades_between(self, symbol: str, start_ms: int, end_ms: int) -> TradeBatch:
        """Every trade of `symbol` with `start_ms <= timestamp < end_ms`, ascending."""
        self._check_symbol(symbol)
        start_ms = max(start_ms, ORIGIN_MS)
        if end_ms <= start_ms:
            return self._empty_batch(symbol)
        parts: list[_DayTrades] = []
        for day in range((start_ms - ORIGIN_MS) // DAY_MS, (end_ms - 1 - ORIGIN_MS) // DAY_MS + 1):
            trades = self._day(symbol, day)
            lo = int(np.searchsorted(trades.timestamps_ms, start_ms, side="left"))
            hi = int(np.searchsorted(trades.timestamps_ms, end_ms, side="left"))
            parts.append(
                _DayTrades(
                    trades.timestamps_ms[lo:hi],
                    trades.prices[lo:hi],
                    trades.amounts[lo:hi],
                    trades.trade_ids[lo:hi],
                )
            )
        return TradeBatch(
            exchange=self.exchange,
            symbol=symbol,
            timestamps_ms=np.concatenate([p.timestamps_ms for p in parts]),
            prices=np.concatenate([p.prices for p in parts]),
            amounts=np.concatenate([p.amounts for p in parts]),
            trade_ids=np.concatenate([p.trade_ids for p in parts]),
        )

    def _empty_batch(self, symbol: str) -> TradeBatch:
        ints = np.empty(0, dtype=np.int64)
        floats = np.empty(0, dtype=np.float64)
        return TradeBatch(self.exchange, symbol, ints, floats, floats, ints)

    def _check_symbol(self, symbol: str) -> None:
        if symbol not in self.symbols:
            raise NotFound(f"{self.exchange} does not list {symbol}", field="symbol")

    # -- MarketSource --------------------------------------------------------------------------

    async def stream_trades(self, symbols: Sequence[str]) -> AsyncIterator[TradeBatch]:
        """Yield each symbol's new trades, batch by batch, as the simulated clock moves on.

        In real time the stream polls every `batch_ms / speed` wall milliseconds (at least 10);
        in virtual-clock mode (`speed=inf`) each step moves the clock `batch_ms` and yields at
        once. The stream ends at `stop_ms`, if any, or when the exchange is closed.
        """
        for symbol in symbols:
            self._check_symbol(symbol)
        cursor = self.now_ms()
        while not self._closed and (self.stop_ms is None or cursor < self.stop_ms):
            if math.isinf(self.speed):
                target = cursor + self.batch_ms
                if self.stop_ms is not None:
                    target = min(target, self.stop_ms)
                self._virtual_now = target
                await asyncio.sleep(0)  # let other tasks run even though no time passes
            else:
                await asyncio.sleep(max(0.01, self.batch_ms / self.speed / 1000))
                target = self.now_ms()
            for symbol in symbols:
                batch = self.trades_between(symbol, cursor, target)
                if len(batch):
                    yield batch
            cursor = target

    async def fetch_ohlcv(self, symbol: str, timeframe: Timeframe, since_ms: int, limit: int) -> OhlcvRows:
        """Closed candles opening at or after `since_ms`, at most `limit` and at most
        `history_days_per_call` days of trades per call (page on by the last open time)."""
        self._check_symbol(symbol)
        length = timeframe.ms
        first = max(since_ms, ORIGIN_MS)
        first = -(-first // length) * length  # the first candle opening at or after since
        closed_until = timeframe.open_time(self.now_ms())  # the forming candle is not history
        window = max(length, self.history_days_per_call * DAY_MS // length * length)
        end = min(first + max(limit, 0) * length, closed_until, first + window)
        trades = self.trades_between(symbol, first, end)
        candles = aggregate_trades(trades.timestamps_ms, trades.prices, trades.amounts, timeframe)
        return OhlcvRows(
            open_time_ms=candles.open_time,
            open=candles.open,
            high=candles.high,
            low=candles.low,
            close=candles.close,
            volume=candles.volume,
        )

    async def close(self) -> None:
        """End any running stream; nothing else to release."""
        self._closed = True
