"""Candle frames the indicator and pattern tests run on: the real fixtures and seeded walks."""

from __future__ import annotations

from functools import cache

import numpy as np

from tekoa.domain.timeframes import Timeframe
from tekoa.market.frame import CandleFrame
from tests.conftest import DATA_DIR


@cache
def goog() -> CandleFrame:
    """GOOG daily, 2148 bars (prices ~100-800, volumes ~1e6-1e7)."""
    return CandleFrame.from_csv(DATA_DIR / "goog_1d_backtesting.csv", Timeframe.D1)


@cache
def eurusd() -> CandleFrame:
    """EURUSD hourly, 5000 bars (prices ~1.05-1.25, moves of 1e-5)."""
    return CandleFrame.from_csv(DATA_DIR / "eurusd_1h_backtesting.csv", Timeframe.H1)


def random_walk(n: int, seed: int, price: float = 100.0, flat_runs: bool = True) -> CandleFrame:
    """A seeded geometric random walk of OHLCV candles starting near `price`.

    With `flat_runs`, some stretches repeat one price with no volume (a market that did not
    trade), so the zero-range and zero-flow branches of the kernels are exercised too.
    """
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.concatenate(([price], close[:-1]))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.005, n))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.005, n))
    volume = rng.uniform(0.0, 1000.0, n).round(3)
    if flat_runs and n > 40:
        for start in rng.integers(1, n - 30, size=max(1, n // 500)):
            length = int(rng.integers(5, 30))
            stop = min(n, start + length)
            level = close[start - 1]
            open_[start:stop] = high[start:stop] = low[start:stop] = close[start:stop] = level
            volume[start:stop] = 0.0
    times = np.arange(n, dtype=np.int64) * Timeframe.H1.ms
    return CandleFrame.from_arrays(Timeframe.H1, times, open_, high, low, close, volume)
