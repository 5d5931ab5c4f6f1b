"""Hand-made candle frames for the pattern tests."""

from __future__ import annotations

import numpy as np

from tekoa.domain.timeframes import Timeframe
from tekoa.market.frame import CandleFrame

Candle = tuple[float, float, float, float]  # open, high, low, close


def frame_of(candles: list[Candle]) -> CandleFrame:
    """A 1h frame of `candles` (volume 1 each)."""
    rows = np.array(candles, dtype=np.float64).reshape(-1, 4)
    n = rows.shape[0]
    times = np.arange(n, dtype=np.int64) * Timeframe.H1.ms
    return CandleFrame.from_arrays(Timeframe.H1, times, *rows.T, np.ones(n))


def falling(bars: int, start: float = 120.0, step: float = 1.0) -> list[Candle]:
    """`bars` bearish candles stepping down from `start` (a downtrend)."""
    out = []
    price = start
    for _ in range(bars):
        out.append((price, price + 0.2, price - step - 0.2, price - step))
        price -= step
    return out


def rising(bars: int, start: float = 80.0, step: float = 1.0) -> list[Candle]:
    """`bars` bullish candles stepping up from `start` (an uptrend)."""
    out = []
    price = start
    for _ in range(bars):
        out.append((price, price + step + 0.2, price - 0.2, price + step))
        price += step
    return out


def flat(bars: int, price: float = 100.0) -> list[Candle]:
    """`bars` small doji-free candles around `price` (no trend, no pattern)."""
    return [
        (price, price + 0.6, price - 0.6, price + 0.5)
        if i % 2
        else (price + 0.5, price + 0.6, price - 0.6, price)
        for i in range(bars)
    ]
