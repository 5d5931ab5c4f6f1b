"""The backtester: `decide` and the fill model over history.

**General path** (every strategy kind): decide on a bar's close with the bot's state, hand the
intents to the simulator, and move on to the next bar on which anything can happen — the
first of: an order arriving (always the next bar), a resting order's price being reached, a
protective exit able to fire (`Simulator.next_event_bar`), or the strategy able to act
(`Brain.next_bar`). The bars skipped are bars on which `decide` would do nothing and no order
would fill, so the result is the one of deciding on every bar; equity is still marked on each.

**Vectorised path** (rule-language strategies): `tekoa.backtest.vectorised`, the same
compiled arrays and kernels in one loop; a test holds its trades equal to the general path's.

No look-ahead: a decision on bar t only sees candles that closed by t's close (the market
view's cursor), and its orders fill at bar t+1 or later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tekoa.backtest import book as bk
from tekoa.backtest.metrics import Metrics, compute_metrics
from tekoa.backtest.simulator import Simulator
from tekoa.backtest.trades import Trade, table_of, trades_of
from tekoa.backtest.vectorised import REASONS, run_compiled_rules
from tekoa.domain.candles import decimal_from_float
from tekoa.domain.orders import Intent, OrderIntent
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import BotMemory
from tekoa.engine import compile_strategy, decide
from tekoa.engine.market import MarketData
from tekoa.engine.rule_strategy import CompiledRules
from tekoa.execution.fills import Costs
from tekoa.strategies.models import RulesStrategy, StrategyDefinition

Progress = Callable[[int, int], None]
"""Called with (bars done, bars in all) as a run advances."""


@dataclass
class BacktestResult:
    """Everything a run produced."""

    strategy: StrategyDefinition
    timeframe: Timeframe
    open_time: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    in_market: npt.NDArray[np.bool_]
    trade_table: npt.NDArray[np.float64]
    """Closed trades as columns (`tekoa.backtest.trades`)."""
    reasons: tuple[str, ...]
    """Names of the table's reason codes."""
    metrics: Metrics
    starting_cash: float
    path: Literal["general", "vectorised"]
    decisions: int = 0
    intents: list[tuple[int, Intent]] = field(default_factory=list)
    """(bar, intent) of every intent `decide` made, in order (general path)."""
    protective_exits: list[tuple[int, OrderIntent]] = field(default_factory=list)
    """(bar, intent) of every exit the protection fired (general path)."""
    open_position: dict[str, Any] | None = None

    @cached_property
    def trades(self) -> list[Trade]:
        """One `Trade` per row of the trade table."""
        return trades_of(self.trade_table, self.reasons, self.open_time)

    def to_json(self) -> dict[str, Any]:
        """Trades (money as decimal strings), the equity curve and the metrics, JSON-ready."""
        return {
            "strategy": self.strategy.model_dump(mode="json"),
            "timeframe": self.timeframe.value,
            "bars": int(self.open_time.shape[0]),
            "start": int(self.open_time[0]) if self.open_time.size else None,
            "end": int(self.open_time[-1]) if self.open_time.size else None,
            "starting_cash": self.starting_cash,
            "path": self.path,
            "metrics": self.metrics.as_dict(),
            "trades": [_trade_json(t) for t in self.trades],
            "open_position": self.open_position,
            "equity": {"open_time": self.open_time.tolist(), "equity": self.equity.tolist()},
        }


def _trade_json(trade: Trade) -> dict[str, Any]:
    def money(value: float) -> str:
        return str(decimal_from_float(value))

    return {
        "side": trade.side.value,
        "entry_time": trade.entry_time,
        "exit_time": trade.exit_time,
        "entry_bar": trade.entry_bar,
        "exit_bar": trade.exit_bar,
        "quantity": money(trade.quantity),
        "entry_price": money(trade.entry_price),
        "exit_price": money(trade.exit_price),
        "pnl": money(trade.pnl),
        "return_pct": round(trade.return_pct, 6),
        "fees": money(trade.fees),
        "reason": trade.reason,
    }


def run_backtest(
    strategy: StrategyDefinition,
    data: MarketData,
    *,
    cash: float = 10_000.0,
    costs: Costs | None = None,
    bot_id: str = "backtest",
    vectorised: bool | None = None,
    progress: Progress | None = None,
) -> BacktestResult:
    """Backtest `strategy` over every bar of its primary timeframe in `data`.

    `vectorised`: None takes the vectorised path for rule strategies and the general path
    otherwise; False forces the general path; True requires a rule strategy.
    """
    costs = costs or Costs()
    if vectorised is None:
        vectorised = isinstance(strategy, RulesStrategy)
    brain = compile_strategy(strategy, data)
    if vectorised:
        if not isinstance(brain, CompiledRules):
            raise ValueError("only rule-language strategies have a vectorised path")
        return _vectorised(strategy, brain, cash, costs, progress)
    return _general(strategy, data, cash, costs, bot_id, progress)


def _general(
    strategy: StrategyDefinition,
    data: MarketData,
    cash: float,
    costs: Costs,
    bot_id: str,
    progress: Progress | None,
) -> BacktestResult:
    brain = compile_strategy(strategy, data)
    timeframe = brain.timeframe
    frame = data.frame(timeframe)
    size = len(frame)
    simulator = Simulator(frame, costs, cash, bot_id)
    equity = np.empty(size, dtype=np.float64)
    in_market = np.zeros(size, dtype=np.bool_)
    memory = BotMemory()
    intents: list[tuple[int, Intent]] = []
    decisions = 0
    bar = 0
    while size:
        decision = decide(strategy, data.at(bar, timeframe), simulator.state(bar, memory))
        decisions += 1
        memory = decision.state.memory
        intents.extend((bar, intent) for intent in decision.intents)
        simulator.submit(decision.intents)
        equity[bar] = simulator.equity_at(bar)
        in_market[bar] = simulator.position_quantity != 0.0
        start = bar + 1
        if start >= size:
            break
        wake = min(size, max(start, brain.next_bar(memory, simulator.in_market(), bar)))
        upcoming = simulator.next_event_bar(start, wake)
        if upcoming > start:
            equity[start:upcoming] = (
                simulator.cash + simulator.position_quantity * frame.close[start:upcoming]
            )
            in_market[start:upcoming] = simulator.position_quantity != 0.0
        if upcoming >= size:
            break
        simulator.process_bar(upcoming)
        bar = upcoming
        if progress is not None:
            progress(bar, size)
    if progress is not None:
        progress(size, size)
    table, reasons = table_of(simulator.trades)
    metrics = compute_metrics(
        frame.open_time, equity, in_market, table, cash, timeframe, float(simulator.book[bk.FEES_PAID])
    )
    return BacktestResult(
        strategy=strategy,
        timeframe=timeframe,
        open_time=frame.open_time,
        equity=equity,
        in_market=in_market,
        trade_table=table,
        reasons=reasons,
        metrics=metrics,
        starting_cash=cash,
        path="general",
        decisions=decisions,
        intents=intents,
        protective_exits=simulator.protective_exits,
        open_position=_open_position(simulator.book, frame.open_time),
    )


def _vectorised(
    strategy: StrategyDefinition, rules: CompiledRules, cash: float, costs: Costs, progress: Progress | None
) -> BacktestResult:
    frame = rules.data.frame(rules.timeframe)
    equity, in_market, table, book = run_compiled_rules(rules, cash, costs)
    times = frame.open_time
    if progress is not None:
        progress(len(frame), len(frame))
    metrics = compute_metrics(
        times, equity, in_market, table, cash, rules.timeframe, float(book[bk.FEES_PAID])
    )
    return BacktestResult(
        strategy=strategy,
        timeframe=rules.timeframe,
        open_time=times,
        equity=equity,
        in_market=in_market,
        trade_table=table,
        reasons=REASONS,
        metrics=metrics,
        starting_cash=cash,
        path="vectorised",
        open_position=_open_position(book, times),
    )


def _open_position(book: npt.NDArray[np.float64], open_time: npt.NDArray[np.int64]) -> dict[str, Any] | None:
    held = float(book[bk.QUANTITY])
    if held == 0.0:
        return None
    return {
        "side": "long" if held > 0 else "short",
        "quantity": str(decimal_from_float(abs(held))),
        "average_entry": str(decimal_from_float(float(book[bk.AVERAGE]))),
        "opened_at": int(open_time[int(book[bk.OPENED_BAR])]),
    }
