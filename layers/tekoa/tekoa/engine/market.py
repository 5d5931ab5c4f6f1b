"""What `decide` knows about a market: closed-candle frames per timeframe, the indicators
computed over them once and shared by every bot on the market, and a memo of compiled
condition arrays.

`MarketData` is built once — over the whole history by the backtester, over the lookback
window by the live evaluator — and `MarketData.at(bar, timeframe)` is a `MarketView`: a cursor
on one closed bar of a primary timeframe. Every series a strategy reads is computed over the
whole frame, vectorised, and read at the cursor, so deciding on the last closed bar and
replaying the whole history run the same code.

**Other timeframes** are aligned to the primary bar by close time: at primary bar i (closing at
`open_time[i] + primary.ms`), a timeframe's latest usable candle is the newest that has closed
by then (`open_time + tf.ms <= close`). A higher-timeframe candle still forming is never seen.
An operand's `offset` counts closed bars of its own timeframe back from that candle.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from tekoa.domain.timeframes import Timeframe
from tekoa.indicators.catalogue import PriceField
from tekoa.market.frame import CandleFrame
from tekoa.strategies.rules import IndicatorKey

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

T = TypeVar("T")


class MissingMarketData(ValueError):
    """A strategy reads a timeframe the market data does not hold."""


class MarketData:
    """Frames of one market (one per timeframe) plus everything computed from them, memoised."""

    def __init__(self, frames: Mapping[Timeframe, CandleFrame], *, symbol: str = "") -> None:
        for timeframe, frame in frames.items():
            if frame.timeframe is not timeframe:
                raise ValueError(f"the {frame.timeframe} frame was given as {timeframe}")
        self.frames: dict[Timeframe, CandleFrame] = dict(frames)
        self.symbol = symbol
        self._memo: dict[Hashable, Any] = {}

    # ---------------------------------------------------------------- access

    def frame(self, timeframe: Timeframe) -> CandleFrame:
        """The closed candles of `timeframe`."""
        try:
            return self.frames[timeframe]
        except KeyError:
            raise MissingMarketData(f"no {timeframe} candles for this market") from None

    def at(self, bar: int, timeframe: Timeframe) -> MarketView:
        """A view on bar `bar` (negative counts from the end) of the `timeframe` frame."""
        size = len(self.frame(timeframe))
        index = bar + size if bar < 0 else bar
        if not 0 <= index < size:
            raise IndexError(f"bar {bar} outside the {size} {timeframe} candles")
        return MarketView(self, timeframe, index)

    def last(self, timeframe: Timeframe) -> MarketView:
        """A view on the newest closed bar of `timeframe` (what the live evaluator decides on)."""
        return self.at(-1, timeframe)

    def memo(self, key: Hashable, build: Callable[[], T]) -> T:
        """`build()` once per key for the life of this data (compiled conditions, signals)."""
        if key in self._memo:
            return self._memo[key]  # type: ignore[no-any-return]
        value = self._memo[key] = build()
        return value

    # ---------------------------------------------------------------- series

    def indicator(self, key: IndicatorKey) -> dict[str, F64]:
        """Every output of one indicator over its timeframe's frame, computed once."""
        from tekoa.indicators.compute import compute

        return self.memo(("indicator", key), lambda: compute(key.name, key.params, self.frame(key.timeframe)))

    def price(self, timeframe: Timeframe, field: PriceField) -> F64:
        """A candle value column (close, hl2, ...) of `timeframe`."""
        from tekoa.indicators.compute import price_column

        return self.memo(("price", timeframe, field), lambda: price_column(self.frame(timeframe), field))

    def alignment(self, primary: Timeframe, other: Timeframe) -> I64:
        """For each primary bar, the index of the newest `other` candle closed by its close (-1: none)."""

        def build() -> I64:
            base = self.frame(primary)
            if other is primary:
                return np.arange(len(base), dtype=np.int64)
            closes = self.frame(other).open_time + other.ms
            found = np.searchsorted(closes, base.open_time + primary.ms, side="right") - 1
            return found.astype(np.int64)

        return self.memo(("alignment", primary, other), build)

    def aligned(self, primary: Timeframe, other: Timeframe, values: F64, offset: int = 0) -> F64:
        """`values` (one per `other` candle) read at each primary bar, `offset` candles back; NaN
        where no such candle has closed."""
        if other is primary:
            if offset == 0:
                return values
            shifted = np.full(values.shape[0], np.nan)
            shifted[offset:] = values[: values.shape[0] - offset]
            return shifted
        index = self.alignment(primary, other) - offset
        out = np.full(index.shape[0], np.nan)
        valid = index >= 0
        out[valid] = values[index[valid]]
        return out

    def aligned_mask(
        self, primary: Timeframe, other: Timeframe, mask: Bools, offset: int = 0
    ) -> tuple[Bools, Bools]:
        """A boolean series of `other` read at each primary bar: (value, defined)."""
        index = self.alignment(primary, other) - offset
        defined = index >= 0
        value = np.zeros(index.shape[0], dtype=np.bool_)
        value[defined] = mask[index[defined]]
        return value, defined


@dataclass(frozen=True, slots=True)
class MarketView:
    """One closed bar of one timeframe of a market: where `decide` stands."""

    data: MarketData
    timeframe: Timeframe
    bar: int

    @property
    def frame(self) -> CandleFrame:
        """The primary timeframe's frame."""
        return self.data.frame(self.timeframe)

    @property
    def open_time(self) -> int:
        """Open time (ms) of the bar decided on: the candle id of every intent it yields."""
        return int(self.frame.open_time[self.bar])

    @property
    def close(self) -> float:
        """The bar's close: the reference price for sizing."""
        return float(self.frame.close[self.bar])
