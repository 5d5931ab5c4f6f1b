"""Candles and drivers shared by the engine and backtest tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tekoa.backtest.data import market_data
from tekoa.backtest.simulator import Simulator
from tekoa.backtest.trades import Trade
from tekoa.domain.orders import Intent
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import BotMemory, BotState
from tekoa.engine import Decision, MarketData, decide
from tekoa.execution.fills import Costs
from tekoa.market.frame import CandleFrame
from tekoa.strategies.models import StrategyDefinition, parse_strategy

START_MS = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000


def random_walk(
    bars: int, seed: int, timeframe: Timeframe = Timeframe.H1, volatility: float = 0.01
) -> CandleFrame:
    """A seeded random-walk market with realistic candles (gaps, wicks, varying volume)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, bars)))
    open_ = np.empty(bars)
    open_[0] = 100.0
    open_[1:] = close[:-1] * (1.0 + rng.normal(0.0, volatility / 10, bars - 1))
    wick = np.abs(rng.normal(0.0, volatility / 2, (2, bars)))
    high = np.maximum(open_, close) * (1.0 + wick[0])
    low = np.minimum(open_, close) * (1.0 - wick[1])
    volume = rng.lognormal(5.0, 0.6, bars)
    times = START_MS + np.arange(bars, dtype=np.int64) * timeframe.ms
    return CandleFrame.from_arrays(timeframe, times, open_, high, low, close, volume)


def candles(
    rows: Sequence[tuple[float, float, float, float] | tuple[float, float, float, float, float]],
    timeframe: Timeframe = Timeframe.H1,
) -> CandleFrame:
    """A frame from (open, high, low, close[, volume]) rows, one bar apart from START_MS."""
    table = np.array([(*r, 1000.0) if len(r) == 4 else r for r in rows], dtype=np.float64)
    times = START_MS + np.arange(len(rows), dtype=np.int64) * timeframe.ms
    return CandleFrame.from_arrays(timeframe, times, *table.T)


def strategy(definition: dict[str, Any]) -> StrategyDefinition:
    return parse_strategy(definition)


@dataclass
class Replay:
    """A bot driven bar by bar the way the live evaluator will drive it: on each bar, market
    data over the candles closed so far, `decide` on its last bar, intents to the simulator."""

    decisions: list[Decision] = field(default_factory=list)
    intents: list[tuple[int, Intent]] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    states: list[BotState] = field(default_factory=list)


def replay(
    definition: StrategyDefinition,
    frame: CandleFrame,
    *,
    cash: float = 10_000.0,
    costs: Costs | None = None,
    growing: bool = True,
) -> Replay:
    """Drive `definition` over `frame` one bar at a time. `growing`: rebuild the market data on
    every bar from the candles closed so far (as live); else one data, a moving cursor."""
    costs = costs or Costs()
    simulator = Simulator(frame, costs, cash, "backtest")
    memory = BotMemory()
    out = Replay()
    whole = market_data(definition, {frame.timeframe: frame})
    for bar in range(len(frame)):
        if bar:
            simulator.process_bar(bar)
        if growing:
            close_ms = int(frame.open_time[bar]) + frame.timeframe.ms
            data = MarketData({tf: f.until(close_ms) for tf, f in whole.frames.items()})
            view = data.last(frame.timeframe)
        else:
            view = whole.at(bar, frame.timeframe)
        state = simulator.state(bar, memory)
        decision = decide(definition, view, state)
        out.states.append(state)
        out.decisions.append(decision)
        out.intents.extend((bar, i) for i in decision.intents)
        memory = decision.state.memory
        simulator.submit(decision.intents)
    out.trades = simulator.trades
    return out
