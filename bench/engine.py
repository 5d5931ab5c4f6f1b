"""Engine benchmarks: indicators next to TA-Lib and pandas on the same 1M bars.

Run: `python bench/engine.py`. Every figure comes from this run on this machine, so ratios
compare like with like. Sections are plain functions that print their own table and return
their figures; each runs on the same seeded 1M-bar random walk (`bars()`).

Indicators: the 7 core indicators (SMA20, EMA20, RSI14, MACD 12/26/9, BBANDS 20/2, ATR14,
STOCH 14/3/3) for Tekoa's kernels, TA-Lib and a straightforward pandas implementation of each.
Every implementation is called once first (Tekoa's first call compiles its kernel or loads it
from numba's cache, reported separately), then timed as the best of `REPEATS` runs. Targets:
Tekoa's total at most TA-Lib's, and at least 5x faster than pandas.
"""

from __future__ import annotations

import gc
import resource
import time
import tracemalloc
from collections.abc import Callable
from functools import cache

import numpy as np
import pandas as pd
import talib

from tekoa.domain.timeframes import Timeframe
from tekoa.indicators import kernels
from tekoa.market.frame import CandleFrame

BARS = 1_000_000
REPEATS = 7
SEED = 2024


@cache
def bars(n: int = BARS, seed: int = SEED) -> CandleFrame:
    """`n` 1m candles of a seeded geometric random walk with realistic wicks and volume."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.concatenate(([30_000.0], close[:-1]))
    high = np.maximum(open_, close) * (1 + rng.exponential(5e-4, n))
    low = np.minimum(open_, close) * (1 - rng.exponential(5e-4, n))
    volume = rng.lognormal(2, 1, n)
    times = np.arange(n, dtype=np.int64) * Timeframe.M1.ms
    return CandleFrame.from_arrays(Timeframe.M1, times, open_, high, low, close, volume)


def best_of(function: Callable[[], object], repeats: int = REPEATS) -> float:
    """Fastest of `repeats` timed calls, in seconds (GC off while timing)."""
    times = []
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return min(times)


def first_call(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def peak_traced_mb(function: Callable[[], object]) -> float:
    """Peak Python-visible allocation (numpy buffers included) during one call, in MB."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------- pandas references


def _wilder(series: pd.Series, period: int) -> pd.Series:
    return series.ewm(alpha=1 / period, adjust=False).mean()


def pandas_indicators(f: CandleFrame) -> dict[str, Callable[[], object]]:
    close = pd.Series(f.close)
    high = pd.Series(f.high)
    low = pd.Series(f.low)

    def rsi() -> object:
        change = close.diff()
        gain = _wilder(change.clip(lower=0), 14)
        loss = _wilder(-change.clip(upper=0), 14)
        return 100 * gain / (gain + loss)

    def macd() -> object:
        line = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
        signal = line.ewm(span=9, adjust=False).mean()
        return line, signal, line - signal

    def bbands() -> object:
        middle = close.rolling(20).mean()
        width = 2 * close.rolling(20).std(ddof=0)
        return middle + width, middle, middle - width

    def atr() -> object:
        previous = close.shift()
        ranges = [high - low, (high - previous).abs(), (low - previous).abs()]
        true_range = pd.concat(ranges, axis=1).max(axis=1)
        return _wilder(true_range, 14)

    def stoch() -> object:
        lowest = low.rolling(14).min()
        fast_k = 100 * (close - lowest) / (high.rolling(14).max() - lowest)
        k = fast_k.rolling(3).mean()
        return k, k.rolling(3).mean()

    return {
        "SMA20": lambda: close.rolling(20).mean(),
        "EMA20": lambda: close.ewm(span=20, adjust=False).mean(),
        "RSI14": rsi,
        "MACD 12/26/9": macd,
        "BBANDS 20/2": bbands,
        "ATR14": atr,
        "STOCH 14/3/3": stoch,
    }


def tekoa_indicators(f: CandleFrame) -> dict[str, Callable[[], object]]:
    return {
        "SMA20": lambda: kernels.sma(f.close, 20),
        "EMA20": lambda: kernels.ema(f.close, 20),
        "RSI14": lambda: kernels.rsi(f.close, 14),
        "MACD 12/26/9": lambda: kernels.macd(f.close, 12, 26, 9),
        "BBANDS 20/2": lambda: kernels.bollinger(f.close, 20, 2.0),
        "ATR14": lambda: kernels.atr(f.high, f.low, f.close, 14),
        "STOCH 14/3/3": lambda: kernels.stochastic(f.high, f.low, f.close, 14, 3, 3),
    }


def talib_indicators(f: CandleFrame) -> dict[str, Callable[[], object]]:
    return {
        "SMA20": lambda: talib.SMA(f.close, 20),
        "EMA20": lambda: talib.EMA(f.close, 20),
        "RSI14": lambda: talib.RSI(f.close, 14),
        "MACD 12/26/9": lambda: talib.MACD(f.close, 12, 26, 9),
        "BBANDS 20/2": lambda: talib.BBANDS(f.close, 20, 2.0, 2.0, 0),
        "ATR14": lambda: talib.ATR(f.high, f.low, f.close, 14),
        "STOCH 14/3/3": lambda: talib.STOCH(f.high, f.low, f.close, 14, 3, 0, 3, 0),
    }


def indicators_section() -> dict[str, dict[str, float]]:
    """Time the 7 core indicators for Tekoa, TA-Lib and pandas; print the table and targets."""
    frame = bars()
    suites = {
        "tekoa": tekoa_indicators(frame),
        "talib": talib_indicators(frame),
        "pandas": pandas_indicators(frame),
    }
    first = {name: first_call(run) for name, run in suites["tekoa"].items()}
    for name in suites["talib"]:
        suites["talib"][name]()
        suites["pandas"][name]()
    seconds = {suite: {name: best_of(run) for name, run in runs.items()} for suite, runs in suites.items()}
    totals = {suite: sum(times.values()) for suite, times in seconds.items()}

    print(f"== indicators: {len(frame):,} bars, best of {REPEATS} (ms)")
    header = ("tekoa", "talib", "pandas")
    print(
        f"{'indicator':<14}"
        + "".join(f"{h:>9}" for h in header)
        + f"{'vs talib':>10}{'vs pandas':>11}{'1st call':>10}"
    )
    for name in suites["tekoa"]:
        t, ta, pd_ = (seconds[s][name] for s in ("tekoa", "talib", "pandas"))
        print(
            f"{name:<14}{t * 1e3:>9.2f}{ta * 1e3:>9.2f}{pd_ * 1e3:>9.2f}"
            f"{ta / t:>9.2f}x{pd_ / t:>10.1f}x{first[name] * 1e3:>9.0f}ms"
        )
    t, ta, pd_ = totals["tekoa"], totals["talib"], totals["pandas"]
    print(f"{'total':<14}{t * 1e3:>9.2f}{ta * 1e3:>9.2f}{pd_ * 1e3:>9.2f}{ta / t:>9.2f}x{pd_ / t:>10.1f}x")
    print(
        f"first calls (numba compile, or load from its cache): {sum(first.values()) * 1e3:.0f} ms in all; "
        "excluded from the timings"
    )
    print(
        f"target total <= TA-Lib: {'met' if t <= ta else 'MISSED'} ({ta / t:.2f}x); "
        f"target >= 5x pandas: {'met' if pd_ >= 5 * t else 'MISSED'} ({pd_ / t:.1f}x)"
    )
    peaks = {
        suite: peak_traced_mb(lambda runs=runs: [run() for run in runs.values()])  # type: ignore[misc]
        for suite, runs in suites.items()
    }
    print(
        "peak traced memory, all 7 at once (MB): "
        + ", ".join(f"{suite} {mb:.0f}" for suite, mb in peaks.items())
        + f" (inputs {5 * frame.close.nbytes / 1e6:.0f} MB)"
    )
    return {"seconds": totals, "first_call_s": {"tekoa": sum(first.values())}, "peak_mb": peaks}


def main() -> None:
    indicators_section()
    print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
