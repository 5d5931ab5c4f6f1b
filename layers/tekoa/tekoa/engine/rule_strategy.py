"""A rule-language strategy compiled against one market: entry and exit truth, the stop and
targets to attach, and the sizing — as arrays over the primary frame.

Behaviour on each closed bar:

* flat, no entry order pending, entry conditions true: a market entry sized by the rule set,
  with the stop and take-profit ladder attached (armed when it fills, at the fill price);
* in a position, exit conditions true: a market exit of the whole position (reduce-only);
* otherwise nothing, and `why` says which conditions held (the confluence score).

Everything the decision reads at a bar is an array here (`entry`, `exit`, `stop_value`, ...),
so the backtester's vectorised path reads the very same numbers `decide` reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from tekoa.domain.orders import OrderType, ProtectionSpec, StopSpec, TargetSpec, place
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import BotMemory, BotState, PositionSide
from tekoa.engine.conditions import Truth, matched_at, operand_series, truth
from tekoa.engine.decision import Decision, SignalIndex, Why, decided, to_decimal
from tekoa.engine.market import F64, MarketData, MarketView
from tekoa.engine.protection import STOP_DISTANCE, STOP_NONE, stop_arrays, target_arrays
from tekoa.engine.sizing import entry_quantity, sizing_code, stop_distance
from tekoa.strategies.rules import (
    AtrStop,
    FixedPriceStop,
    PartialTakeProfit,
    PercentStop,
    PercentTakeProfit,
    RiskRewardTakeProfit,
    RuleSet,
    TrailingStop,
)

I64 = npt.NDArray[np.int64]


def _stop_spec(rules: RuleSet) -> StopSpec | None:
    stop = rules.stop_loss
    if isinstance(stop, PercentStop):
        return StopSpec(kind="percent", value=stop.pct)
    if isinstance(stop, FixedPriceStop):
        return StopSpec(kind="price", value=stop.price)
    if isinstance(stop, TrailingStop):
        return StopSpec(kind="trailing_percent", value=stop.pct, activation_pct=stop.activation_pct)
    return None  # ATR stops are resolved per bar; no stop at all is None too


def _targets(rules: RuleSet) -> tuple[tuple[TargetSpec, ...], bool]:
    take = rules.take_profit
    if isinstance(take, PercentTakeProfit):
        return (TargetSpec(kind="percent", value=take.pct),), False
    if isinstance(take, RiskRewardTakeProfit):
        if isinstance(rules.stop_loss, TrailingStop):
            # R is the initial stop distance, which for a trailing stop is its percentage.
            return (TargetSpec(kind="percent", value=take.ratio * rules.stop_loss.pct),), False
        return (TargetSpec(kind="r_multiple", value=take.ratio),), False
    if isinstance(take, PartialTakeProfit):
        ladder = tuple(
            TargetSpec(kind="percent", value=t.pct, size_fraction=t.size_fraction) for t in take.targets
        )
        return ladder, True
    return (), False


@dataclass(eq=False)
class CompiledRules:
    """A `RuleSet` over one market's data (see the module doc)."""

    rules: RuleSet
    data: MarketData
    timeframe: Timeframe
    side: PositionSide
    entry: Truth
    exit: Truth | None
    stop_kind: int
    stop_value: F64
    """Per bar: the stop's parameter (percent, price, or an ATR stop's distance; NaN: unknown)."""
    activation_pct: float
    target_kinds: I64
    target_values: F64
    target_fractions: F64
    breakeven: bool
    sizing_kind: int
    sizing_value: float
    _stop: StopSpec | None
    _targets: tuple[TargetSpec, ...]
    _entries: SignalIndex = field(init=False)
    _exits: SignalIndex | None = field(init=False)

    @classmethod
    def compile(cls, rules: RuleSet, data: MarketData) -> CompiledRules:
        timeframe = rules.timeframe
        size = len(data.frame(timeframe))
        stop = _stop_spec(rules)
        targets, breakeven = _targets(rules)
        if isinstance(rules.stop_loss, AtrStop):
            atr = operand_series(data, timeframe, rules.stop_loss.atr())
            stop_kind = STOP_DISTANCE
            stop_value = np.asarray(atr, dtype=np.float64) * float(rules.stop_loss.multiple)
            activation = math.nan
        else:
            stop_kind, value, activation = stop_arrays(stop)
            stop_value = np.full(size, value, dtype=np.float64)
        target_kinds, target_values, target_fractions = target_arrays(targets)
        sizing_kind, sizing_value = sizing_code(rules.position_sizing)
        return cls(
            rules=rules,
            data=data,
            timeframe=timeframe,
            side=PositionSide(rules.side),
            entry=truth(data, timeframe, rules.entry),
            exit=None if rules.exit is None else truth(data, timeframe, rules.exit),
            stop_kind=stop_kind,
            stop_value=stop_value,
            activation_pct=activation,
            target_kinds=target_kinds,
            target_values=target_values,
            target_fractions=target_fractions,
            breakeven=breakeven,
            sizing_kind=sizing_kind,
            sizing_value=sizing_value,
            _stop=stop,
            _targets=targets,
        )

    def __post_init__(self) -> None:
        self._entries = SignalIndex(self.entry.true)
        self._exits = None if self.exit is None else SignalIndex(self.exit.true)

    def protection_at(self, bar: int) -> ProtectionSpec | None:
        """The exits to attach to an entry decided on `bar`."""
        stop = self._stop
        if self.stop_kind == STOP_DISTANCE:
            stop = StopSpec(kind="distance", value=to_decimal(float(self.stop_value[bar])))
        if stop is None and not self._targets:
            return None
        return ProtectionSpec(stop=stop, targets=self._targets, breakeven_after_first_target=self.breakeven)

    def decide(self, view: MarketView, state: BotState) -> Decision:
        bar = view.bar
        memory = state.memory.model_copy(update={"last_decided": view.open_time})
        if state.position is not None:
            if self.exit is not None and self.exit.true[bar]:
                assert self.rules.exit is not None
                matched, score = matched_at(self.data, self.timeframe, self.rules.exit, bar)
                exit_order = place(
                    state.bot_id,
                    view.open_time,
                    "exit",
                    state.position.side.exit_side,
                    OrderType.MARKET,
                    state.position.quantity,
                    reduce_only=True,
                    reason="exit conditions met",
                )
                return decided(
                    state,
                    memory,
                    [exit_order],
                    Why(reason="exit conditions met", matched=matched, score=score),
                )
            return decided(state, memory, [], Why(reason="in position: exit conditions not met"))
        if any(order.leg == "entry" for order in state.orders):
            return decided(state, memory, [], Why(reason="entry order pending"))
        matched, score = matched_at(self.data, self.timeframe, self.rules.entry, bar)
        if not self.entry.true[bar]:
            reason = "entry conditions not met" if self.entry.known[bar] else "indicators warming up"
            return decided(state, memory, [], Why(reason=reason, matched=matched, score=score))
        price = view.close
        distance = stop_distance(self.stop_kind, float(self.stop_value[bar]), float(self.side.sign), price)
        if self.stop_kind != STOP_NONE and math.isnan(distance):
            return decided(
                state,
                memory,
                [],
                Why(reason="no entry: the stop is unknown or not on the losing side of the price"),
            )
        quantity = entry_quantity(
            self.sizing_kind, self.sizing_value, float(state.equity), float(state.cash), price, distance
        )
        if quantity <= 0.0:
            return decided(state, memory, [], Why(reason="no entry: no cash to size the order"))
        entry_order = place(
            state.bot_id,
            view.open_time,
            "entry",
            self.side.entry_side,
            OrderType.MARKET,
            to_decimal(quantity),
            protection=self.protection_at(bar),
            reason="entry conditions met",
        )
        return decided(
            state, memory, [entry_order], Why(reason="entry conditions met", matched=matched, score=score)
        )

    def next_bar(self, memory: BotMemory, in_market: bool, after: int) -> int:
        if in_market:
            return self._exits.next_after(after) if self._exits is not None else len(self.entry.true)
        return self._entries.next_after(after)
