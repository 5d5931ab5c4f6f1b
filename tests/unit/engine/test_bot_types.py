"""Scenario tests: each built-in bot type driven through candles, checking its intents and
state bar by bar."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from tekoa.backtest.data import market_data
from tekoa.backtest.runner import run_backtest
from tekoa.domain.orders import CancelIntent, OrderIntent, OrderSide, OrderType
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import BotMemory, BotState
from tekoa.engine import MarketData, compile_strategy, decide
from tests.unit.engine.support import candles, random_walk, replay, strategy

QUOTE_100 = {"amount": "100", "unit": "quote"}


def _places(decision: Any) -> list[OrderIntent]:
    return [i for i in decision.intents if isinstance(i, OrderIntent)]


def _cancels(decision: Any) -> list[CancelIntent]:
    return [i for i in decision.intents if isinstance(i, CancelIntent)]


# --------------------------------------------------------------------------- grid

GRID = {
    "kind": "builtin",
    "bot_type": "grid",
    "params": {
        "timeframe": "1h",
        "lower_price": "90",
        "upper_price": "110",
        "levels": 5,
        "spacing": "arithmetic",
        "order_size": {"amount": "1", "unit": "base"},
        "stop_loss_price": "85",
        "take_profit_price": "115",
    },
}


def test_grid_arms_buys_below_the_price_and_rearms_the_opposite_order_after_each_fill() -> None:
    run = replay(
        strategy(GRID),
        candles(
            [
                (102.0, 103.0, 101.0, 102.0),  # start: buys at 90, 95, 100
                (102.0, 102.5, 99.5, 101.0),  # the buy at 100 fills
                (101.0, 105.5, 100.5, 104.0),  # the sell at 105 fills
            ]
        ),
        growing=False,
    )
    start, bought, sold = run.decisions

    assert [(i.leg, i.side, i.price) for i in _places(start)] == [
        ("grid-b0", OrderSide.BUY, Decimal(90)),
        ("grid-b1", OrderSide.BUY, Decimal(95)),
        ("grid-b2", OrderSide.BUY, Decimal(100)),
    ]
    assert all(i.protection is not None and i.protection.stop is not None for i in _places(start))
    # the buy at level 2 filled: a sell one level up, reduce-only, of the quantity bought
    assert [(i.leg, i.side, i.price, i.quantity, i.reduce_only) for i in _places(bought)] == [
        ("grid-s3", OrderSide.SELL, Decimal(105), Decimal(1), True)
    ]
    assert bought.state.memory.grid == {0: OrderSide.BUY, 1: OrderSide.BUY, 3: OrderSide.SELL}
    # the sell at level 3 filled: the buy at level 2 is armed again
    assert [(i.leg, i.price) for i in _places(sold)] == [("grid-b2", Decimal(100))]
    assert sold.state.memory.grid == {0: OrderSide.BUY, 1: OrderSide.BUY, 2: OrderSide.BUY}
    assert [(t.entry_price, t.exit_price, t.pnl) for t in run.trades] == [(100.0, 105.0, 5.0)]


def test_grid_is_closed_by_its_stop_below_the_range_and_trades_no_more() -> None:
    run = replay(
        strategy(GRID),
        candles(
            [
                (102.0, 103.0, 101.0, 102.0),
                (102.0, 102.5, 84.0, 86.0),  # through every buy, then the stop at 85
                (86.0, 103.0, 86.0, 102.0),
            ]
        ),
        growing=False,
    )

    assert [f.leg for f in run.states[1].fills] == ["grid-b2", "grid-b1", "grid-b0", "stop"]
    assert run.states[1].position is None
    assert run.decisions[1].state.memory.stopped
    assert run.decisions[2].intents == ()
    assert [t.reason for t in run.trades] == ["stop"]
    assert run.trades[0].exit_price == 85.0


# --------------------------------------------------------------------------- dca

DCA = {
    "kind": "builtin",
    "bot_type": "dca",
    "params": {
        "timeframe": "1h",
        "base_order_size": "100",
        "safety_order_size": "50",
        "max_safety_orders": 3,
        "price_deviation_pct": "2",
        "step_scale": "1.5",
        "volume_scale": "2",
        "take_profit_pct": "1.5",
        "stop_loss_pct": "20",
    },
}


def test_dca_safety_order_k_sits_at_its_deviation_and_the_take_profit_follows_the_average() -> None:
    run = replay(
        strategy(DCA),
        candles(
            [
                (100.0, 100.0, 100.0, 100.0),  # deal starts: base order
                (100.0, 100.5, 99.5, 100.0),  # base fills at 100
                (100.0, 100.2, 97.5, 98.0),  # safety order 1 fills at 98
                (98.0, 99.0, 94.0, 95.0),  # safety order 2 fills at 95
                (95.0, 101.0, 95.0, 100.5),  # the take profit fills
            ]
        ),
        growing=False,
    )
    start, based, first, second, closed = run.decisions

    assert [(i.leg, i.type, i.quantity) for i in _places(start)] == [("base", OrderType.MARKET, Decimal(1))]
    # after the base fill: take profit 1.5 % above 100, safety order 1 at 2 % below
    assert {i.leg: i.price for i in _places(based)} == {"tp": Decimal("101.5"), "so-1": Decimal("98")}
    # after safety order 1: the old take profit is cancelled and placed at the new average
    position = run.states[2].position
    assert position is not None
    assert [c.leg for c in _cancels(first)] == ["tp"]
    moved = {i.leg: i for i in _places(first)}
    assert moved["tp"].price == position.average_entry * Decimal("1.015")
    assert moved["tp"].quantity == position.quantity
    # safety order 2 at 2 + 3 = 5 % below the base, for 50 x 2 quote
    assert moved["so-2"].price == Decimal(95)
    assert float(moved["so-2"].quantity) == pytest.approx(100 / 95)
    # safety order 3 at 5 + 4.5 = 9.5 % below the base
    assert {i.leg: i.price for i in _places(second)}["so-3"] == Decimal("90.5")
    assert second.state.memory.safety_orders_filled == 2
    # the take profit closed the deal: the last safety order is cancelled and a new deal starts
    assert [c.leg for c in _cancels(closed)] == ["so-3"]
    assert [i.leg for i in _places(closed)] == ["base"]
    assert closed.state.memory.base_price is None


def test_dca_waits_out_its_cooldown_after_a_deal() -> None:
    params = {**DCA["params"], "cooldown_bars": 2}
    run = replay(
        strategy({**DCA, "params": params}),
        candles(
            [
                (100.0, 100.0, 100.0, 100.0),
                (100.0, 100.5, 99.5, 100.0),
                (100.0, 102.0, 100.0, 101.8),  # take profit at 101.5 fills
                (101.8, 102.0, 101.0, 101.5),
                (101.5, 102.0, 101.0, 101.5),
            ]
        ),
        growing=False,
    )

    assert [i.leg for i in _places(run.decisions[2])] == []
    assert run.decisions[2].why.reason == "cooling down after the last deal"
    assert [i.leg for i in _places(run.decisions[3])] == []
    assert [i.leg for i in _places(run.decisions[4])] == ["base"]


# --------------------------------------------------------------------------- dip

DIP = {
    "kind": "builtin",
    "bot_type": "dip",
    "params": {
        "timeframe": "1h",
        "drop_pct": "5",
        "lookback_bars": 5,
        "confirmation": {"type": "green_candles", "count": 2},
        "take_profit_pct": "5",
        "stop_loss_pct": "5",
        "order_size": QUOTE_100,
    },
}


def test_dip_arms_on_the_drop_and_waits_for_its_confirmation() -> None:
    flat = [(100.0, 100.5, 99.5, 100.0)] * 5
    run = replay(
        strategy(DIP),
        candles(
            [
                *flat,
                (100.0, 100.0, 94.0, 94.5),  # 6 % under the recent high: armed
                (94.5, 94.6, 93.0, 93.2),  # red: wait
                (93.2, 94.0, 93.0, 93.9),  # one green: wait
                (93.9, 95.0, 93.8, 94.8),  # two greens: buy
            ]
        ),
        growing=False,
    )
    reasons = [d.why.reason for d in run.decisions]

    assert all(not d.intents for d in run.decisions[:8])
    assert reasons[5:8] == ["dip armed: waiting for confirmation"] * 3
    assert run.decisions[5].state.memory.armed_high == Decimal("100.5")
    assert run.decisions[7].state.memory.armed_low == Decimal(93)
    assert [(i.leg, i.side) for i in _places(run.decisions[8])] == [("entry", OrderSide.BUY)]
    assert run.decisions[8].state.memory.armed_at is None


def test_dip_with_a_trailing_entry_buys_the_rebound_off_the_low() -> None:
    params = {**DIP["params"], "confirmation": None, "trailing_buy_pct": "1"}
    flat = [(100.0, 100.5, 99.5, 100.0)] * 5
    run = replay(
        strategy({**DIP, "params": params}),
        candles(
            [
                *flat,
                (100.0, 100.0, 94.0, 94.2),  # armed; 94.2 is not 1 % above the low 94
                (94.2, 94.3, 92.0, 92.5),  # a new low at 92
                (92.5, 93.0, 92.4, 92.9),  # 92.9 < 92 x 1.01 = 92.92: wait
                (92.9, 93.5, 92.8, 93.3),  # rebound: buy
            ]
        ),
        growing=False,
    )

    assert [bool(d.intents) for d in run.decisions[5:]] == [False, False, False, True]
    assert "rebound" in run.decisions[7].why.reason


# --------------------------------------------------------------------------- momentum

MOMENTUM = {
    "kind": "builtin",
    "bot_type": "momentum",
    "params": {
        "timeframe": "1h",
        "mode": {"type": "breakout", "lookback": 3},
        "volume_confirmation": {"period": 3, "multiplier": "1.5"},
        "trailing_stop_pct": "5",
        "order_size": QUOTE_100,
    },
}


def test_momentum_needs_its_volume_confirmation() -> None:
    quiet = [(100.0, 101.0, 99.0, 100.0, 100.0)] * 4
    run = replay(
        strategy(MOMENTUM),
        candles(
            [
                *quiet,
                (100.0, 103.5, 100.0, 103.0, 100.0),  # breakout on ordinary volume
                (103.0, 105.5, 103.0, 105.0, 400.0),  # breakout on 400 > 1.5 x 200
            ]
        ),
        growing=False,
    )

    assert run.decisions[4].intents == ()
    assert run.decisions[4].why.reason == "breakout without volume confirmation"
    entry = _places(run.decisions[5])
    assert [(i.leg, i.side) for i in entry] == [("entry", OrderSide.BUY)]
    assert entry[0].protection is not None and entry[0].protection.stop is not None
    assert entry[0].protection.stop.kind == "trailing_percent"
    assert run.decisions[5].why.matched == ("breakout", "volume confirmation")


def test_momentum_rides_until_its_trailing_stop() -> None:
    quiet = [(100.0, 101.0, 99.0, 100.0, 100.0)] * 4
    run = replay(
        strategy(MOMENTUM),
        candles(
            [
                *quiet,
                (100.0, 103.5, 100.0, 103.0, 400.0),  # signal
                (103.0, 110.5, 103.0, 110.0, 100.0),  # filled at 103, best price 110.5
                (110.0, 110.2, 104.0, 104.5, 100.0),  # 110.5 x 0.95 = 104.975: stopped
            ]
        ),
        growing=False,
    )

    assert [(t.entry_price, t.exit_price, t.reason) for t in run.trades] == [
        (103.0, pytest.approx(104.975), "stop")
    ]


# --------------------------------------------------------------------------- scalper

SCALPER = {
    "kind": "builtin",
    "bot_type": "scalper",
    "params": {
        "timeframe": "1m",
        "fast_ema_period": 3,
        "slow_ema_period": 8,
        "rsi_period": 5,
        "take_profit_pct": "0.3",
        "stop_loss_pct": "0.3",
        "max_trades_per_hour": 2,
        "order_size": QUOTE_100,
    },
}


def test_scalper_respects_max_trades_per_hour() -> None:
    # Given a bar where the scalper's signal holds
    frame = random_walk(400, seed=11, timeframe=Timeframe.M1, volatility=0.004)
    definition = strategy(SCALPER)
    data = MarketData({Timeframe.M1: frame})
    brain: Any = compile_strategy(definition, data)
    bar = int(np.flatnonzero(brain.entry.true)[3])
    view = data.at(bar, Timeframe.M1)
    minute = 60_000

    def decided(entries: tuple[int, ...]) -> Any:
        state = BotState(
            bot_id="b", cash=Decimal(1000), equity=Decimal(1000), memory=BotMemory(entries=entries)
        )
        return decide(definition, view, state)

    # When two entries were made in the last hour, then when they are older than an hour
    full = decided((view.open_time - 50 * minute, view.open_time - 10 * minute))
    free = decided((view.open_time - 61 * minute, view.open_time - 60 * minute))

    # Then the first is refused and the second enters and remembers it
    assert full.intents == () and full.why.reason == "max trades per hour reached (2)"
    assert [i.leg for i in _places(free)] == ["entry"]
    assert free.state.memory.entries == (view.open_time,)


def test_scalper_never_enters_more_than_its_hourly_limit_over_a_long_run() -> None:
    definition = strategy({**SCALPER, "params": {**SCALPER["params"], "max_trades_per_hour": 1}})
    frame = random_walk(3000, seed=5, timeframe=Timeframe.M1, volatility=0.004)
    result = run_backtest(definition, market_data(definition, {Timeframe.M1: frame}))
    entries = [
        i.candle_open_time for _, i in result.intents if isinstance(i, OrderIntent) and i.leg == "entry"
    ]

    assert len(entries) > 10
    assert min(b - a for a, b in pairwise(entries)) >= 3_600_000
