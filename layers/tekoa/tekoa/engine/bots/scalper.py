"""The scalper: quick long trades on an EMA cross, filtered by RSI, with tight fixed exits.

On each closed bar, while flat and with no entry pending, it buys at market when either
* EMA(fast) crosses above EMA(slow) while RSI is below `rsi_overbought` (a fresh up-move that
  is not yet stretched), or
* RSI crosses back above `rsi_oversold` while EMA(fast) is above EMA(slow) (a stretched dip
  inside an up-move);
unless `max_trades_per_hour` entries were already made in the rolling hour ending with this
bar. Each entry carries a stop `stop_loss_pct` below and a target `take_profit_pct` above its
fill price; there is no signal exit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tekoa.domain.orders import ProtectionSpec, StopSpec, TargetSpec
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import BotMemory, BotState
from tekoa.engine.bots._entry import compare, condition, constant, entering, indicator, market_entry
from tekoa.engine.conditions import Truth, matched_at, truth
from tekoa.engine.decision import Decision, SignalIndex, Why, decided
from tekoa.engine.market import MarketData, MarketView
from tekoa.strategies.params import ScalperParams
from tekoa.strategies.rules import Condition

HOUR_MS = 3_600_000


def scalper_signal(params: ScalperParams) -> Condition:
    """The scalper's entry condition in the rule language."""
    fast = indicator("ema", period=params.fast_ema_period)
    slow = indicator("ema", period=params.slow_ema_period)
    rsi = indicator("rsi", period=params.rsi_period)
    return condition(
        {
            "type": "any",
            "conditions": [
                {
                    "type": "all",
                    "conditions": [
                        compare(fast, "crosses_above", slow),
                        compare(rsi, "lt", constant(params.rsi_overbought)),
                    ],
                },
                {
                    "type": "all",
                    "conditions": [
                        compare(rsi, "crosses_above", constant(params.rsi_oversold)),
                        compare(fast, "gt", slow),
                    ],
                },
            ],
        }
    )


def entries_within_hour(memory: BotMemory, open_time: int) -> tuple[int, ...]:
    """Entries of the rolling hour ending with the bar opening at `open_time`."""
    return tuple(t for t in memory.entries if t > open_time - HOUR_MS)


@dataclass(eq=False)
class Scalper:
    """The scalper over one market's data (see the module doc)."""

    params: ScalperParams
    data: MarketData
    timeframe: Timeframe = field(init=False)
    signal: Condition = field(init=False)
    entry: Truth = field(init=False)
    _entries: SignalIndex = field(init=False)
    _protection: ProtectionSpec = field(init=False)

    def __post_init__(self) -> None:
        self.timeframe = self.params.timeframe
        self.signal = scalper_signal(self.params)
        self.entry = truth(self.data, self.timeframe, self.signal)
        self._entries = SignalIndex(self.entry.true)
        self._protection = ProtectionSpec(
            stop=StopSpec(kind="percent", value=self.params.stop_loss_pct),
            targets=(TargetSpec(kind="percent", value=self.params.take_profit_pct),),
        )

    def decide(self, view: MarketView, state: BotState) -> Decision:
        bar = view.bar
        recent = entries_within_hour(state.memory, view.open_time)
        memory = state.memory.model_copy(update={"last_decided": view.open_time, "entries": recent})
        if state.position is not None:
            return decided(state, memory, [], Why(reason="in position: take-profit and stop armed"))
        if entering(state):
            return decided(state, memory, [], Why(reason="entry order pending"))
        matched, score = matched_at(self.data, self.timeframe, self.signal, bar)
        if not self.entry.true[bar]:
            return decided(
                state, memory, [], Why(reason="no EMA cross with RSI filter", matched=matched, score=score)
            )
        if len(recent) >= self.params.max_trades_per_hour:
            reason = f"max trades per hour reached ({self.params.max_trades_per_hour})"
            return decided(state, memory, [], Why(reason=reason, matched=matched, score=score))
        order = market_entry(
            view, state, self.params.order_size, self._protection, "EMA cross with RSI filter"
        )
        if order is None:
            return decided(state, memory, [], Why(reason="no entry: no cash to size the order"))
        memory = memory.model_copy(update={"entries": (*recent, view.open_time)})
        return decided(
            state, memory, [order], Why(reason="EMA cross with RSI filter", matched=matched, score=score)
        )

    def next_bar(self, memory: BotMemory, in_market: bool, after: int) -> int:
        return len(self.entry.true) if in_market else self._entries.next_after(after)
