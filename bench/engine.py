"""Engine benchmarks: indicators next to TA-Lib and pandas on the same 1M bars.

Run: `python bench/engine.py`. Every figure comes from this run on this machine, so ratios
compare like with like. Sections are plain functions that print their own table and return
their figures; each runs on the same seeded 1M-bar random walk (`bars()`).

Indicators: the 7 core indicators (SMA20, EMA20, RSI14, MACD 12/26/9, BBANDS 20/2, ATR14,
STOCH 14/3/3) for Tekoa's kernels, TA-Lib and a straightforward pandas implementation of each.
Every implementation is called once first (Tekoa's first call compiles its kernel or loads it
from numba's cache, reported separately), then timed as the best of `REPEATS` runs. Targets:
Tekoa's total at most TA-Lib's, and at least 5x faster than pandas.

Backtests, on the same bars: the SMA(10)/SMA(20) cross (long only, 100 % of equity, no fees)
next to vectorbt and backtesting.py (the latter on a 20k-bar slice: it runs bar by bar in
Python) — target 10M bars/s; a 5-condition rule strategy with an ATR stop, a 2R target and
risk sizing, on both of Tekoa's paths; a DCA bot. Each run starts from fresh market data, so
it includes computing the indicators and conditions; compiled code is warmed up first.
"""

from __future__ import annotations

import gc
import resource
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import talib

from tekoa.backtest.data import market_data
from tekoa.backtest.runner import BacktestResult, run_backtest
from tekoa.domain.timeframes import Timeframe
from tekoa.execution.fills import Costs
from tekoa.indicators import kernels
from tekoa.market.frame import CandleFrame
from tekoa.strategies.models import StrategyDefinition, parse_strategy

BARS = 1_000_000
REPEATS = 7
SEED = 2024
BACKTESTING_PY_BARS = 20_000


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


# --------------------------------------------------------------------------- backtests


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    section: str
    case: str
    bars: int
    seconds: float
    note: str = ""

    @property
    def bars_per_s(self) -> float:
        return self.bars / self.seconds


def _sma(period: int) -> dict[str, Any]:
    return {"type": "indicator", "name": "sma", "params": {"period": period}}


SMA_CROSS = parse_strategy(
    {
        "kind": "rules",
        "rules": {
            "timeframe": "1m",
            "entry": {"type": "compare", "left": _sma(10), "op": "crosses_above", "right": _sma(20)},
            "exit": {"type": "compare", "left": _sma(10), "op": "crosses_below", "right": _sma(20)},
            "position_sizing": {"type": "percent_equity", "pct": "100"},
        },
    }
)
FIVE_CONDITIONS = parse_strategy(
    {
        "kind": "rules",
        "rules": {
            "timeframe": "1m",
            "entry": {
                "type": "all",
                "conditions": [
                    {
                        "type": "compare",
                        "left": {"type": "indicator", "name": "ema", "params": {"period": 12}},
                        "op": "crosses_above",
                        "right": {"type": "indicator", "name": "ema", "params": {"period": 26}},
                    },
                    {
                        "type": "compare",
                        "left": {"type": "indicator", "name": "rsi", "params": {"period": 14}},
                        "op": "lt",
                        "right": {"type": "constant", "value": "70"},
                    },
                    {
                        "type": "compare",
                        "left": {"type": "price", "field": "close"},
                        "op": "gt",
                        "right": _sma(200),
                    },
                    {
                        "type": "compare",
                        "left": {"type": "indicator", "name": "macd", "output": "hist"},
                        "op": "gt",
                        "right": {"type": "constant", "value": "0"},
                    },
                    {
                        "type": "compare",
                        "left": {"type": "indicator", "name": "adx", "params": {"period": 14}},
                        "op": "gt",
                        "right": {"type": "constant", "value": "20"},
                    },
                ],
            },
            "exit": {
                "type": "compare",
                "left": {"type": "indicator", "name": "rsi", "params": {"period": 14}},
                "op": "gt",
                "right": {"type": "constant", "value": "75"},
            },
            "stop_loss": {"type": "atr_multiple", "multiple": "2", "period": 14},
            "take_profit": {"type": "risk_reward", "ratio": "2"},
            "position_sizing": {"type": "risk", "risk_pct": "1"},
        },
    }
)
DCA = parse_strategy(
    {
        "kind": "builtin",
        "bot_type": "dca",
        "params": {
            "timeframe": "1m",
            "base_order_size": "100",
            "safety_order_size": "100",
            "max_safety_orders": 5,
            "price_deviation_pct": "0.5",
            "step_scale": "1.4",
            "volume_scale": "1.5",
            "take_profit_pct": "0.5",
            "stop_loss_pct": "10",
        },
    }
)


def _backtest(
    strategy: StrategyDefinition, frame: CandleFrame, *, vectorised: bool | None = None, fee_pct: float = 0.0
) -> tuple[BacktestResult, float]:
    """One run from a fresh market (indicators, conditions, loop, metrics); (result, seconds)."""
    data = market_data(strategy, {Timeframe.M1: frame})
    gc.collect()
    start = time.perf_counter()
    result = run_backtest(strategy, data, costs=Costs.from_pct(fee_pct), vectorised=vectorised)
    return result, time.perf_counter() - start


def _best(runs: int, work: Callable[[], float]) -> float:
    return min(work() for _ in range(runs))


# --------------------------------------------------------------------------- sections


def sma_cross_section(frame: CandleFrame) -> list[Row]:
    """SMA(10)/SMA(20) cross, long only, 100 % of equity, no fees: Tekoa, vectorbt, backtesting.py."""
    _backtest(SMA_CROSS, frame.take(slice(0, 5000)))  # compile
    result, _ = _backtest(SMA_CROSS, frame)
    seconds = _best(3, lambda: _backtest(SMA_CROSS, frame)[1])
    rows = [
        Row("sma cross", "tekoa (vectorised path)", len(frame), seconds, f"{len(result.trades):,} trades")
    ]
    slice_ = frame.take(slice(0, 100_000))
    general, general_s = _backtest(SMA_CROSS, slice_, vectorised=False)
    rows.append(
        Row(
            "sma cross",
            "tekoa (general path, decide per event)",
            len(slice_),
            general_s,
            f"first 100k bars, {general.decisions:,} decisions",
        )
    )
    rows.append(_vectorbt(frame, len(result.trades)))
    rows.append(_backtesting_py(frame.take(slice(0, BACKTESTING_PY_BARS))))
    return rows


def _vectorbt(frame: CandleFrame, trades: int) -> Row:
    try:
        import vectorbt as vbt
    except Exception as exc:
        return Row("sma cross", "vectorbt", len(frame), float("nan"), f"did not install/import: {exc}")
    close = pd.Series(frame.close)
    open_ = pd.Series(frame.open)

    def run() -> tuple[float, int]:
        start = time.perf_counter()
        fast, slow = vbt.MA.run(close, 10), vbt.MA.run(close, 20)
        entries = fast.ma_crossed_above(slow).shift(1, fill_value=False)
        exits = fast.ma_crossed_below(slow).shift(1, fill_value=False)
        portfolio = vbt.Portfolio.from_signals(
            close, entries, exits, price=open_, init_cash=10_000, freq="1min"
        )
        count = int(portfolio.trades.count())
        return time.perf_counter() - start, count

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run()  # compile
        seconds, count = min(run() for _ in range(3))
    return Row(
        "sma cross",
        f"vectorbt {vbt.__version__}",
        len(frame),
        seconds,
        f"{count:,} trades (tekoa: {trades:,})",
    )


def _backtesting_py(frame: CandleFrame) -> Row:
    import backtesting
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    table = pd.DataFrame(
        {
            "Open": frame.open,
            "High": frame.high,
            "Low": frame.low,
            "Close": frame.close,
            "Volume": frame.volume,
        },
        index=pd.to_datetime(frame.open_time, unit="ms"),
    )

    def sma(values: pd.Series, period: int) -> pd.Series:
        return pd.Series(values).rolling(period).mean()

    class SmaCross(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, 10)
            self.slow = self.I(sma, self.data.Close, 20)

        def next(self) -> None:
            if crossover(self.fast, self.slow) and not self.position:
                self.buy(size=0.9999)
            elif crossover(self.slow, self.fast) and self.position:
                self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        Backtest(table, SmaCross, cash=1e12, commission=0).run()
        seconds = time.perf_counter() - start
    note = f"first {len(frame):,} bars only (it runs bar by bar in Python)"
    return Row("sma cross", f"backtesting.py {backtesting.__version__}", len(frame), seconds, note)


def rule_strategy_section(frame: CandleFrame) -> list[Row]:
    """A 5-condition rule strategy (EMA cross, RSI, SMA(200) trend, MACD, ADX) with an ATR stop,
    a 2R target and 1 % risk sizing, 0.1 % fees."""
    _backtest(FIVE_CONDITIONS, frame.take(slice(0, 5000)), fee_pct=0.1)
    _backtest(FIVE_CONDITIONS, frame.take(slice(0, 5000)), vectorised=False, fee_pct=0.1)
    result, _ = _backtest(FIVE_CONDITIONS, frame, fee_pct=0.1)
    seconds = _best(3, lambda: _backtest(FIVE_CONDITIONS, frame, fee_pct=0.1)[1])
    general, general_s = _backtest(FIVE_CONDITIONS, frame, vectorised=False, fee_pct=0.1)
    return [
        Row(
            "5-condition rules",
            "tekoa (vectorised path)",
            len(frame),
            seconds,
            f"{len(result.trades):,} trades",
        ),
        Row(
            "5-condition rules",
            "tekoa (general path)",
            len(frame),
            general_s,
            f"{general.decisions:,} decisions, same trades: {general.trades == result.trades}",
        ),
    ]


def dca_section(frame: CandleFrame) -> list[Row]:
    """A DCA bot (5 safety orders, 0.5 % steps, 0.5 % take profit), 0.1 % fees."""
    _backtest(DCA, frame.take(slice(0, 5000)), fee_pct=0.1)
    result, seconds = _backtest(DCA, frame, fee_pct=0.1)
    note = f"{result.decisions:,} decisions, {len(result.intents):,} intents, {len(result.trades):,} trades"
    return [Row("dca bot", "tekoa (general path)", len(frame), seconds, note)]


def backtest_memory_section(frame: CandleFrame) -> list[Row]:
    """Peak traced memory of one SMA-cross and one DCA backtest over the 1M bars."""
    rows = []
    for name, strategy in (("sma cross", SMA_CROSS), ("dca bot", DCA)):
        data = market_data(strategy, {Timeframe.M1: frame})
        gc.collect()
        tracemalloc.start()
        start = time.perf_counter()
        run_backtest(strategy, data)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append(
            Row(
                "peak memory",
                name,
                len(frame),
                seconds,
                f"{peak / 2**20:,.1f} MiB traced (timing under tracemalloc)",
            )
        )
    return rows


def backtest_section() -> list[Row]:
    """Every backtest case on the 1M bars; print the table and the target."""
    frame = bars()
    rows: list[Row] = []
    for section in (sma_cross_section, rule_strategy_section, dca_section, backtest_memory_section):
        rows.extend(section(frame))
    print(f"== backtests: {len(frame):,} bars (1m)")
    print(f"{'section':<20} {'case':<40} {'bars':>10} {'seconds':>9} {'bars/s':>14}  note")
    for row in rows:
        rate = f"{row.bars_per_s:>14,.0f}"
        print(f"{row.section:<20} {row.case:<40} {row.bars:>10,} {row.seconds:>9.3f} {rate}  {row.note}")
    tekoa = next(r for r in rows if r.case == "tekoa (vectorised path)")
    target = "met" if tekoa.bars_per_s >= 10e6 else "MISSED"
    print(f"target SMA cross >= 10M bars/s: {target} ({tekoa.bars_per_s / 1e6:,.1f}M bars/s)")
    return rows


def main() -> None:
    indicators_section()
    backtest_section()
    print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
