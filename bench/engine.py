"""Engine benchmarks: the backtester on 1M bars next to vectorbt and backtesting.py, a
5-condition rule strategy and a DCA bot over 1M one-minute bars, and peak memory.

Run: `python bench/engine.py`. Every figure comes from this run on this machine. Compiled
code is warmed up on a small slice first, so the timings are of the work, not of numba's
compiler (which caches to disk anyway). Each section is a plain function returning rows.
"""

from __future__ import annotations

import gc
import resource
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tekoa.backtest.data import market_data
from tekoa.backtest.runner import BacktestResult, run_backtest
from tekoa.domain.timeframes import Timeframe
from tekoa.execution.fills import Costs
from tekoa.market.frame import CandleFrame
from tekoa.strategies.models import StrategyDefinition, parse_strategy

BARS = 1_000_000
BACKTESTING_PY_BARS = 20_000
T0 = 1_717_200_000_000  # 2024-06-01T00:00Z


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


def bars(n: int = BARS, seed: int = 7) -> CandleFrame:
    """`n` one-minute candles of a seeded random walk (the same bars for every section)."""
    rng = np.random.default_rng(seed)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 8e-4, n)))
    open_ = np.empty(n)
    open_[0] = 30_000.0
    open_[1:] = close[:-1]
    wicks = np.abs(rng.normal(0.0, 4e-4, (2, n)))
    high = np.maximum(open_, close) * (1.0 + wicks[0])
    low = np.minimum(open_, close) * (1.0 - wicks[1])
    volume = rng.lognormal(2.0, 0.7, n)
    times = T0 + np.arange(n, dtype=np.int64) * Timeframe.M1.ms
    return CandleFrame.from_arrays(Timeframe.M1, times, open_, high, low, close, volume)


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


def memory_section(frame: CandleFrame) -> list[Row]:
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


def main() -> None:
    frame = bars()
    rows: list[Row] = []
    for section in (sma_cross_section, rule_strategy_section, dca_section, memory_section):
        rows.extend(section(frame))
    print(f"{'section':<20} {'case':<40} {'bars':>10} {'seconds':>9} {'bars/s':>14}  note")
    for row in rows:
        rate = f"{row.bars_per_s:>14,.0f}"
        print(f"{row.section:<20} {row.case:<40} {row.bars:>10,} {row.seconds:>9.3f} {rate}  {row.note}")
    tekoa = next(r for r in rows if r.case == "tekoa (vectorised path)")
    target = "meets" if tekoa.bars_per_s >= 10e6 else "misses"
    print(f"SMA cross: tekoa {tekoa.bars_per_s / 1e6:,.1f}M bars/s ({target} the 10M bars/s target)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak RSS of this process: {peak:,.0f} MiB (1M bars x 6 columns = {len(frame) * 48 / 2**20:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
