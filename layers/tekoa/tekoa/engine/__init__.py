"""tekoa.engine: `decide(strategy, market, state) -> Decision`, pure.

One decision function for history and for live: the backtester calls it over a whole frame
with a moving cursor, the live evaluator over the lookback window on its last bar. No I/O; it
imports numpy and numba, never a database, AWS or exchange client.
"""

from __future__ import annotations

from tekoa.domain.trading import BotState
from tekoa.engine.bots.dca import Dca
from tekoa.engine.bots.dip import Dip
from tekoa.engine.bots.grid import Grid
from tekoa.engine.bots.momentum import Momentum
from tekoa.engine.bots.scalper import Scalper
from tekoa.engine.decision import Brain, Decision, Why
from tekoa.engine.market import MarketData, MarketView, MissingMarketData
from tekoa.engine.rule_strategy import CompiledRules
from tekoa.strategies.models import (
    DcaStrategy,
    DipStrategy,
    GridStrategy,
    MomentumStrategy,
    RulesStrategy,
    ScalperStrategy,
    StrategyDefinition,
)

__all__ = [
    "Brain",
    "Decision",
    "MarketData",
    "MarketView",
    "MissingMarketData",
    "Why",
    "compile_strategy",
    "decide",
]


def _build(strategy: StrategyDefinition, data: MarketData) -> Brain:
    if isinstance(strategy, RulesStrategy):
        return CompiledRules.compile(strategy.rules, data)
    if isinstance(strategy, ScalperStrategy):
        return Scalper(strategy.params, data)
    if isinstance(strategy, GridStrategy):
        return Grid(strategy.params, data)
    if isinstance(strategy, DcaStrategy):
        return Dca(strategy.params, data)
    if isinstance(strategy, DipStrategy):
        return Dip(strategy.params, data)
    if isinstance(strategy, MomentumStrategy):
        return Momentum(strategy.params, data)
    raise TypeError(f"unknown strategy {type(strategy).__name__}")  # pragma: no cover


def compile_strategy(strategy: StrategyDefinition, data: MarketData) -> Brain:
    """The strategy compiled against `data`, once per strategy object for the data's life."""
    # Keyed by identity and holding the strategy, so the id cannot be reused while cached.
    _, brain = data.memo(("brain", id(strategy)), lambda: (strategy, _build(strategy, data)))
    return brain


def decide(strategy: StrategyDefinition, market: MarketView, state: BotState) -> Decision:
    """What `strategy` does on the closed bar `market` stands on, given the bot's `state`.

    Pure: the same inputs give the same decision, intents with the same client order ids
    included. `market.timeframe` must be the strategy's primary timeframe.
    """
    brain = compile_strategy(strategy, market.data)
    if market.timeframe is not brain.timeframe:
        raise ValueError(f"the strategy decides on {brain.timeframe} bars, not {market.timeframe}")
    return brain.decide(market, state)
