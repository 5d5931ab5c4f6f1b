"""`decide` on a rule-language strategy: entries with their exits attached and sized, exits,
the reasons, and the same decision twice giving the same order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from tekoa.domain.orders import OrderIntent, OrderSide, OrderType
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import BotState, Position, PositionSide
from tekoa.engine import MarketData, decide
from tekoa.indicators import atr
from tests.unit.engine.support import random_walk, strategy

FRAME = random_walk(300, seed=21, timeframe=Timeframe.H1, volatility=0.02)
DATA = MarketData({Timeframe.H1: FRAME})
CLOSE_ABOVE_SMA = {
    "type": "compare",
    "left": {"type": "price", "field": "close"},
    "op": "gt",
    "right": {"type": "indicator", "name": "sma", "params": {"period": 5}},
}
CLOSE_BELOW_SMA = {**CLOSE_ABOVE_SMA, "op": "lt"}
ALWAYS = {
    "type": "compare",
    "left": {"type": "price", "field": "close"},
    "op": "gt",
    "right": {"type": "constant", "value": "0"},
}


def _rules(**fields: Any) -> Any:
    base: dict[str, Any] = {
        "timeframe": "1h",
        "entry": {"type": "all", "conditions": [CLOSE_ABOVE_SMA, ALWAYS]},
        "exit": CLOSE_BELOW_SMA,
        "position_sizing": {"type": "fixed_quote", "amount": "1000"},
    }
    return strategy({"kind": "rules", "rules": base | fields})


def _flat(cash: str = "10000") -> BotState:
    return BotState(bot_id="bot-1", cash=Decimal(cash), equity=Decimal(cash))


def _bar_where(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[5])


def _sma5() -> np.ndarray:
    return np.convolve(FRAME.close, np.ones(5) / 5, mode="full")[: len(FRAME)]


def test_entry_is_a_market_order_with_its_exits_attached_and_the_reason() -> None:
    definition = _rules(
        stop_loss={"type": "percent", "pct": "2"},
        take_profit={
            "type": "targets",
            "targets": [{"pct": "2", "size_fraction": "0.5"}, {"pct": "4", "size_fraction": "0.5"}],
        },
    )
    bar = _bar_where(FRAME.close > _sma5())

    decision = decide(definition, DATA.at(bar, Timeframe.H1), _flat())

    (entry,) = decision.intents
    assert isinstance(entry, OrderIntent)
    assert (entry.leg, entry.side, entry.type, entry.reduce_only) == (
        "entry",
        OrderSide.BUY,
        OrderType.MARKET,
        False,
    )
    assert float(entry.quantity) == pytest.approx(1000 / FRAME.close[bar])
    assert entry.protection is not None and entry.protection.stop is not None
    assert (entry.protection.stop.kind, entry.protection.stop.value) == ("percent", Decimal(2))
    assert [t.value for t in entry.protection.targets] == [Decimal(2), Decimal(4)]
    assert entry.protection.breakeven_after_first_target
    assert decision.why.reason == "entry conditions met" and decision.why.score == 1.0
    assert decision.state.memory.last_decided == int(FRAME.open_time[bar])


def test_the_same_decision_made_twice_names_the_same_order() -> None:
    definition = _rules(stop_loss={"type": "percent", "pct": "2"})
    bar = _bar_where(FRAME.close > _sma5())
    again = MarketData({Timeframe.H1: FRAME})

    first = decide(definition, DATA.at(bar, Timeframe.H1), _flat())
    second = decide(definition, again.at(bar, Timeframe.H1), _flat())

    assert first == second
    assert first.intents[0].client_order_id == second.intents[0].client_order_id


def test_risk_sizing_loses_the_risk_at_an_atr_stop() -> None:
    definition = _rules(
        stop_loss={"type": "atr_multiple", "multiple": "2", "period": 14},
        position_sizing={"type": "risk", "risk_pct": "1"},
    )
    bar = _bar_where((FRAME.close > _sma5()) & (np.arange(len(FRAME)) > 50))
    distance = 2 * atr(FRAME.high, FRAME.low, FRAME.close, 14)[bar]

    (entry,) = decide(definition, DATA.at(bar, Timeframe.H1), _flat("100000")).intents

    assert (
        isinstance(entry, OrderIntent) and entry.protection is not None and entry.protection.stop is not None
    )
    assert entry.protection.stop.kind == "distance"
    assert float(entry.protection.stop.value) == distance
    assert float(entry.quantity) * distance == pytest.approx(1000.0)  # 1 % of 100000


def test_sizing_never_spends_more_than_the_cash() -> None:
    definition = _rules(position_sizing={"type": "percent_equity", "pct": "100"})
    bar = _bar_where(FRAME.close > _sma5())
    state = BotState(bot_id="b", cash=Decimal(400), equity=Decimal(1000))

    (entry,) = decide(definition, DATA.at(bar, Timeframe.H1), state).intents

    assert isinstance(entry, OrderIntent)
    assert float(entry.quantity) * FRAME.close[bar] == pytest.approx(400.0)


def test_a_fixed_stop_on_the_wrong_side_of_the_price_prevents_the_entry() -> None:
    definition = _rules(stop_loss={"type": "fixed_price", "price": "100000"})
    bar = _bar_where(FRAME.close > _sma5())

    decision = decide(definition, DATA.at(bar, Timeframe.H1), _flat())

    assert decision.intents == ()
    assert "losing side" in decision.why.reason


def test_in_a_position_the_exit_conditions_close_it_all_at_market() -> None:
    definition = _rules(side="short", stop_loss={"type": "percent", "pct": "2"})
    bar = _bar_where(FRAME.close < _sma5())
    held = Position(
        side=PositionSide.SHORT,
        quantity=Decimal("3.5"),
        average_entry=Decimal(100),
        entry_quantity=Decimal("3.5"),
        opened_at=int(FRAME.open_time[0]),
    )
    state = BotState(bot_id="b", cash=Decimal(1000), equity=Decimal(1000), position=held)

    (exit_order,) = decide(definition, DATA.at(bar, Timeframe.H1), state).intents

    assert isinstance(exit_order, OrderIntent)
    assert (exit_order.leg, exit_order.side, exit_order.quantity, exit_order.reduce_only) == (
        "exit",
        OrderSide.BUY,
        Decimal("3.5"),
        True,
    )


def test_no_entry_says_which_conditions_held() -> None:
    definition = _rules()
    bar = _bar_where(FRAME.close < _sma5())

    decision = decide(definition, DATA.at(bar, Timeframe.H1), _flat())

    assert decision.intents == ()
    assert decision.why.reason == "entry conditions not met"
    assert decision.why.matched == ("close gt 0",)
    assert decision.why.score == 0.5


def test_the_view_must_be_on_the_strategy_timeframe() -> None:
    data = MarketData({Timeframe.H1: FRAME, Timeframe.M1: random_walk(10, 1, Timeframe.M1)})

    with pytest.raises(ValueError, match="decides on 1h bars"):
        decide(_rules(), data.at(0, Timeframe.M1), _flat())
