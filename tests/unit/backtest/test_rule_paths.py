"""Random rule strategies: the backtester's general path decides what `decide` decides bar by
bar on growing windows (as the live evaluator will call it), and the vectorised path trades
exactly what the general path trades."""

from __future__ import annotations

import pytest

from tekoa.backtest.data import market_data
from tekoa.backtest.runner import run_backtest
from tekoa.domain.timeframes import Timeframe
from tekoa.execution.fills import Costs
from tests.unit.engine.random_rules import rules
from tests.unit.engine.support import random_walk, replay, strategy

COSTS = Costs.from_pct(0.1, maker_pct=0.02, slippage_pct=0.05)


@pytest.mark.parametrize("seed", range(6))
def test_random_rules_decide_the_same_in_the_backtester_and_bar_by_bar(seed: int) -> None:
    # Given a random rule strategy on 1h bars reading 4h series too
    definition = strategy(rules(seed))
    frame = random_walk(240, seed=seed, timeframe=Timeframe.H1, volatility=0.015)

    # When the backtester runs it, and decide runs bar by bar on the candles closed so far
    result = run_backtest(
        definition, market_data(definition, {frame.timeframe: frame}), costs=COSTS, vectorised=False
    )
    live = replay(definition, frame, costs=COSTS)

    # Then the intents (bar, side, quantity, protection, id ...) and the trades are the same
    assert [(bar, i.model_dump()) for bar, i in result.intents] == [
        (bar, i.model_dump()) for bar, i in live.intents
    ]
    assert result.trades == live.trades


@pytest.mark.parametrize("seed", range(24))
def test_vectorised_path_trades_exactly_like_the_general_path(seed: int) -> None:
    # Given a random rule strategy over a long market
    definition = strategy(rules(1000 + seed))
    frame = random_walk(3000, seed=seed, timeframe=Timeframe.H1, volatility=0.012)
    data = market_data(definition, {frame.timeframe: frame})

    # When it runs through both paths
    general = run_backtest(definition, data, costs=COSTS, vectorised=False)
    fast = run_backtest(definition, data, costs=COSTS, vectorised=True)

    # Then the trades, the equity curve and the metrics are identical
    assert fast.trades == general.trades
    assert (fast.equity == general.equity).all()
    assert (fast.in_market == general.in_market).all()
    assert fast.metrics == general.metrics
    assert fast.open_position == general.open_position


def test_the_random_strategies_trade() -> None:
    # The parity above means something only if the strategies actually trade.
    traded = 0
    for seed in range(24):
        definition = strategy(rules(1000 + seed))
        frame = random_walk(3000, seed=seed, timeframe=Timeframe.H1, volatility=0.012)
        traded += bool(run_backtest(definition, market_data(definition, {frame.timeframe: frame})).trades)
    assert traded >= 16
