"""The dip buyer: buys a fall from the recent high once the fall shows signs of ending.

On each closed bar, while flat and with no entry pending:
* **arming**: a dip arms when the close is at least `drop_pct` below the highest high of the
  last `lookback_bars` bars (this bar included); the bot remembers that high and the lowest
  low since;
* **buying**: while armed it buys at market on the first bar that confirms — the
  `confirmation` holds on that bar (`count` green candles in a row ending there, RSI below its
  threshold, or a close above the previous bar's high; always, without one) and, with
  `trailing_buy_pct`, the close is at least that far above the lowest low since arming (a
  trailing entry: it follows the fall down and buys the rebound);
* **disarming**: a close back at or above the remembered high ends the dip unbought.
Each entry carries a stop `stop_loss_pct` below and a target `take_profit_pct` above its fill.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from tekoa.domain.orders import ProtectionSpec, StopSpec, TargetSpec
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import BotMemory, BotState
from tekoa.engine.bots._entry import compare, condition, constant, entering, indicator, market_entry, operand
from tekoa.engine.conditions import Truth, operand_series, truth
from tekoa.engine.decision import Decision, SignalIndex, Why, decided, to_decimal
from tekoa.engine.market import F64, Bools, MarketData, MarketView
from tekoa.strategies.params import (
    CloseAbovePriorHighConfirmation,
    DipParams,
    GreenCandlesConfirmation,
    RsiBelowConfirmation,
)
from tekoa.strategies.rules import Condition


def confirmation_condition(params: DipParams) -> Condition | None:
    """The dip's confirmation in the rule language (None: no confirmation asked)."""
    confirm = params.confirmation
    if isinstance(confirm, GreenCandlesConfirmation):
        greens: list[dict[str, Any]] = [
            compare(
                {"type": "price", "field": "close", "offset": k},
                "gt",
                {"type": "price", "field": "open", "offset": k},
            )
            for k in range(confirm.count)
        ]
        return condition({"type": "all", "conditions": greens})
    if isinstance(confirm, RsiBelowConfirmation):
        return condition(compare(indicator("rsi", period=confirm.period), "lt", constant(confirm.threshold)))
    if isinstance(confirm, CloseAbovePriorHighConfirmation):
        return condition(
            compare(
                {"type": "price", "field": "close"}, "gt", {"type": "price", "field": "high", "offset": 1}
            )
        )
    return None


@njit(cache=True)
def _next_armed_bar(
    close: F64, low: F64, confirmed: Bools, armed_low: float, armed_high: float, rebound: float, start: int
) -> int:
    """The first bar from `start` on which an armed dip buys or disarms (see `Dip.decide`)."""
    for bar in range(start, close.shape[0]):
        armed_low = min(armed_low, low[bar])
        if close[bar] >= armed_high:
            return bar
        if confirmed[bar] and (math.isnan(rebound) or close[bar] >= armed_low * (1.0 + rebound / 100.0)):
            return bar
    return int(close.shape[0])


@dataclass(eq=False)
class Dip:
    """The dip buyer over one market's data (see the module doc)."""

    params: DipParams
    data: MarketData
    timeframe: Timeframe = field(init=False)
    recent_high: F64 = field(init=False)
    dip: Bools = field(init=False)
    confirmed: Bools = field(init=False)
    _dips: SignalIndex = field(init=False)
    _protection: ProtectionSpec = field(init=False)
    _rebound: float = field(init=False)

    def __post_init__(self) -> None:
        self.timeframe = self.params.timeframe
        frame = self.data.frame(self.timeframe)
        high = operand_series(
            self.data,
            self.timeframe,
            operand(indicator("highest", period=self.params.lookback_bars, source="high")),
        )
        self.recent_high = np.asarray(high, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            self.dip = frame.close <= self.recent_high * (1.0 - float(self.params.drop_pct) / 100.0)
        confirm = confirmation_condition(self.params)
        if confirm is None:
            self.confirmed = np.ones(len(frame), dtype=np.bool_)
        else:
            confirmed: Truth = truth(self.data, self.timeframe, confirm)
            self.confirmed = confirmed.true
        self._dips = SignalIndex(self.dip)
        self._rebound = (
            math.nan if self.params.trailing_buy_pct is None else float(self.params.trailing_buy_pct)
        )
        self._protection = ProtectionSpec(
            stop=StopSpec(kind="percent", value=self.params.stop_loss_pct),
            targets=(TargetSpec(kind="percent", value=self.params.take_profit_pct),),
        )

    def _low_since(self, memory: BotMemory, bar: int) -> float:
        """The lowest low since the dip armed, up to and including `bar`."""
        frame = self.data.frame(self.timeframe)
        first = int(np.searchsorted(frame.open_time, memory.last_decided or 0, side="right"))
        lows = frame.low[first : bar + 1]
        remembered = math.inf if memory.armed_low is None else float(memory.armed_low)
        return min(remembered, float(lows.min())) if lows.size else remembered

    def decide(self, view: MarketView, state: BotState) -> Decision:
        bar = view.bar
        frame = view.frame
        memory = state.memory
        if state.position is not None or entering(state):
            reason = "in position: take-profit and stop armed" if state.position else "entry order pending"
            return decided(
                state, memory.model_copy(update={"last_decided": view.open_time}), [], Why(reason=reason)
            )
        if memory.armed_at is None:
            if not self.dip[bar]:
                reason = f"no dip: the close is not {self.params.drop_pct} % below the recent high"
                return decided(
                    state, memory.model_copy(update={"last_decided": view.open_time}), [], Why(reason=reason)
                )
            armed_at, armed_high, armed_low = (
                view.open_time,
                float(self.recent_high[bar]),
                float(frame.low[bar]),
            )
        else:
            assert memory.armed_high is not None
            armed_at, armed_high = memory.armed_at, float(memory.armed_high)
            armed_low = self._low_since(memory, bar)
            if view.close >= armed_high:
                cleared = _disarmed(memory, view.open_time)
                return decided(state, cleared, [], Why(reason="dip recovered before a confirmed buy"))
        armed = memory.model_copy(
            update={
                "last_decided": view.open_time,
                "armed_at": armed_at,
                "armed_high": to_decimal(armed_high),
                "armed_low": to_decimal(armed_low),
            }
        )
        matched: tuple[str, ...] = ("dip",)
        if not self.confirmed[bar]:
            return decided(
                state, armed, [], Why(reason="dip armed: waiting for confirmation", matched=matched)
            )
        matched = (*matched, "confirmation") if self.params.confirmation else matched
        if not math.isnan(self._rebound) and view.close < armed_low * (1.0 + self._rebound / 100.0):
            reason = f"dip armed: waiting for a {self.params.trailing_buy_pct} % rebound off the low"
            return decided(state, armed, [], Why(reason=reason, matched=matched))
        order = market_entry(view, state, self.params.order_size, self._protection, "dip bought")
        if order is None:
            return decided(state, armed, [], Why(reason="no entry: no cash to size the order"))
        return decided(
            state, _disarmed(memory, view.open_time), [order], Why(reason="dip bought", matched=matched)
        )

    def next_bar(self, memory: BotMemory, in_market: bool, after: int) -> int:
        if in_market:
            return len(self.dip)
        if memory.armed_at is None or memory.armed_high is None or memory.armed_low is None:
            return self._dips.next_after(after)
        frame = self.data.frame(self.timeframe)
        return int(
            _next_armed_bar(
                frame.close,
                frame.low,
                self.confirmed,
                float(memory.armed_low),
                float(memory.armed_high),
                self._rebound,
                after + 1,
            )
        )


def _disarmed(memory: BotMemory, open_time: int) -> BotMemory:
    return memory.model_copy(
        update={"last_decided": open_time, "armed_at": None, "armed_high": None, "armed_low": None}
    )
