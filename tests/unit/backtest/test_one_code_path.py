"""The backtester decides what `decide` decides when called bar by bar on the candles closed
so far, as the live evaluator will call it: same intents on the same bars, same trades."""

from __future__ import annotations

from typing import Any

import pytest

from tekoa.backtest.data import market_data
from tekoa.backtest.runner import run_backtest
from tekoa.domain.timeframes import Timeframe
from tekoa.execution.fills import Costs
from tests.unit.engine.support import random_walk, replay, strategy

QUOTE = {"amount": "500", "unit": "quote"}

BOTS: dict[str, dict[str, Any]] = {
    "scalper": {
        "kind": "builtin",
        "bot_type": "scalper",
        "params": {
            "timeframe": "1m",
            "fast_ema_period": 5,
            "slow_ema_period": 13,
            "rsi_period": 7,
            "take_profit_pct": "0.8",
            "stop_loss_pct": "0.5",
            "max_trades_per_hour": 2,
            "order_size": QUOTE,
        },
    },
    "grid": {
        "kind": "builtin",
        "bot_type": "grid",
        "params": {
            "timeframe": "1m",
            "lower_price": "85",
            "upper_price": "105",
            "levels": 11,
            "spacing": "geometric",
            "order_size": QUOTE,
            "stop_loss_price": "80",
            "take_profit_price": "110",
        },
    },
    "dca": {
        "kind": "builtin",
        "bot_type": "dca",
        "params": {
            "timeframe": "1m",
            "base_order_size": "300",
            "safety_order_size": "200",
            "max_safety_orders": 3,
            "price_deviation_pct": "1",
            "step_scale": "1.5",
            "volume_scale": "1.5",
            "take_profit_pct": "1",
            "stop_loss_pct": "8",
            "cooldown_bars": 5,
        },
    },
    "dip": {
        "kind": "builtin",
        "bot_type": "dip",
        "params": {
            "timeframe": "1m",
            "drop_pct": "2",
            "lookback_bars": 30,
            "confirmation": {"type": "green_candles", "count": 2},
            "trailing_buy_pct": "0.5",
            "take_profit_pct": "1.5",
            "stop_loss_pct": "2",
            "order_size": QUOTE,
        },
    },
    "momentum": {
        "kind": "builtin",
        "bot_type": "momentum",
        "params": {
            "timeframe": "1m",
            "mode": {"type": "breakout", "lookback": 20},
            "volume_confirmation": {"period": 10, "multiplier": "1.2"},
            "trailing_stop_pct": "1",
            "take_profit_pct": "3",
            "order_size": QUOTE,
        },
    },
}


@pytest.mark.parametrize("name", sorted(BOTS))
def test_backtester_and_bar_by_bar_decide_agree_for_every_bot_type(name: str) -> None:
    # Given a bot over a volatile market (fees and slippage on)
    definition = strategy(BOTS[name])
    frame = random_walk(360, seed=sum(map(ord, name)), timeframe=Timeframe.M1, volatility=0.006)
    costs = Costs.from_pct(0.1, maker_pct=0.05, slippage_pct=0.02)

    # When it runs through the backtester and through decide bar by bar on growing windows
    result = run_backtest(definition, market_data(definition, {frame.timeframe: frame}), costs=costs)
    live = replay(definition, frame, costs=costs)

    # Then both make the same decisions on the same bars, and the same trades
    assert [(bar, i.model_dump()) for bar, i in result.intents] == [
        (bar, i.model_dump()) for bar, i in live.intents
    ]
    assert result.intents, "the scenario must trade"
    assert result.trades == live.trades
    assert result.decisions < len(frame)  # quiet bars were skipped
