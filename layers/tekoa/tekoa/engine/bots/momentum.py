"""The momentum bot: rides breakouts or strong rate of change, out on a trailing stop.

On each closed bar, while flat and with no entry pending, it buys at market when
* breakout mode: the close is above the highest high of the `lookback` bars before it, or
* roc mode: ROC(`period`), in percent, is above `threshold_pct`;
and, with `volume_confirmation`, the bar's volume is above `multiplier` × SMA(volume,
`period`) — a signal without that volume is reported and not traded. Each entry carries a
trailing stop `trailing_stop_pct` below the best price since entry, and `take_profit_pct`
above the fill when given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tekoa.domain.orders import ProtectionSpec, StopSpec, TargetSpec
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import BotMemory, BotState
from tekoa.engine.bots._entry import compare, condition, constant, entering, indicator, market_entry, operand
from tekoa.engine.conditions import Truth, operand_series, truth
from tekoa.engine.decision import Decision, SignalIndex, Why, decided
from tekoa.engine.market import MarketData, MarketView
from tekoa.indicators.catalogue import PriceField
from tekoa.strategies.params import BreakoutMode, MomentumParams
from tekoa.strategies.rules import Condition


def momentum_signal(params: MomentumParams) -> Condition:
    """The momentum trigger (without the volume filter) in the rule language."""
    if isinstance(params.mode, BreakoutMode):
        channel = indicator("highest", period=params.mode.lookback, source=PriceField.HIGH.value, offset=1)
        return condition(compare({"type": "price", "field": "close"}, "gt", channel))
    roc = indicator("roc", period=params.mode.period)
    return condition(compare(roc, "gt", constant(params.mode.threshold_pct)))


@dataclass(eq=False)
class Momentum:
    """The momentum bot over one market's data (see the module doc)."""

    params: MomentumParams
    data: MarketData
    timeframe: Timeframe = field(init=False)
    signal: Condition = field(init=False)
    trigger: Truth = field(init=False)
    volume: Truth | None = field(init=False)
    entry: Truth = field(init=False)
    _entries: SignalIndex = field(init=False)
    _protection: ProtectionSpec = field(init=False)

    def __post_init__(self) -> None:
        self.timeframe = self.params.timeframe
        self.signal = momentum_signal(self.params)
        self.trigger = truth(self.data, self.timeframe, self.signal)
        self.volume = self._volume_truth()
        if self.volume is None:
            self.entry = self.trigger
        else:
            self.entry = Truth(self.trigger.true & self.volume.true, self.trigger.false | self.volume.false)
        self._entries = SignalIndex(self.entry.true)
        take = self.params.take_profit_pct
        self._protection = ProtectionSpec(
            stop=StopSpec(kind="trailing_percent", value=self.params.trailing_stop_pct),
            targets=() if take is None else (TargetSpec(kind="percent", value=take),),
        )

    def _volume_truth(self) -> Truth | None:
        confirm = self.params.volume_confirmation
        if confirm is None:
            return None
        average = operand_series(
            self.data, self.timeframe, operand(indicator("volume_sma", period=confirm.period))
        )
        volume = self.data.frame(self.timeframe).volume
        known = ~np.isnan(average)
        with np.errstate(invalid="ignore"):
            holds = volume > float(confirm.multiplier) * average
        return Truth(known & holds, known & ~holds)

    def decide(self, view: MarketView, state: BotState) -> Decision:
        bar = view.bar
        memory = state.memory.model_copy(update={"last_decided": view.open_time})
        if state.position is not None:
            return decided(state, memory, [], Why(reason="in position: trailing stop armed"))
        if entering(state):
            return decided(state, memory, [], Why(reason="entry order pending"))
        mode = self.params.mode.type
        if not self.trigger.true[bar]:
            return decided(state, memory, [], Why(reason=f"no {mode} signal"))
        matched: tuple[str, ...] = (mode,)
        if not self.entry.true[bar]:
            return decided(
                state,
                memory,
                [],
                Why(reason=f"{mode} without volume confirmation", matched=matched, score=0.5),
            )
        if self.volume is not None:
            matched = (mode, "volume confirmation")
        order = market_entry(view, state, self.params.order_size, self._protection, f"{mode} momentum")
        if order is None:
            return decided(state, memory, [], Why(reason="no entry: no cash to size the order"))
        return decided(state, memory, [order], Why(reason=f"{mode} momentum", matched=matched, score=1.0))

    def next_bar(self, memory: BotMemory, in_market: bool, after: int) -> int:
        return len(self.entry.true) if in_market else self._entries.next_after(after)
