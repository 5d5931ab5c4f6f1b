"""Dollar-cost averaging: a base order, safety orders further and further down, and one
take profit that follows the average entry.

A deal, decided on closed bars:
* **start**: flat with nothing resting and no cooldown running, buy `base_order_size` (quote)
  at market, with a stop `stop_loss_pct` below its fill price attached when given (the stop is
  measured from the base price and stays there as safety orders add);
* **in the deal**: keep two orders resting — a take-profit limit sell of the whole position at
  `take_profit_pct` above the average entry, and the next safety order `k` (while
  `k <= max_safety_orders`): a limit buy of `safety_order_size × volume_scale^(k-1)` quote at
  the base price less the ladder's total deviation for `k` (`DcaParams.safety_orders`). When a
  safety order fills, the take profit is cancelled and placed again for the new quantity at the
  new average, and safety order `k+1` is placed;
* **end**: once the position is gone (take profit or stop), cancel what still rests, and wait
  `cooldown_bars` bars before the next deal.
One safety order rests at a time, so a crash through several levels fills one per bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from tekoa.domain.orders import OrderSide, OrderType, ProtectionSpec, StopSpec, place
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import BotMemory, BotState
from tekoa.engine.decision import Decision, Wanted, Why, decided, reconcile, to_decimal
from tekoa.engine.market import MarketData, MarketView
from tekoa.engine.sizing import FIXED_QUOTE, entry_quantity
from tekoa.strategies.params import DcaParams, SafetyOrder

BASE = "base"
TAKE_PROFIT = "tp"
SAFETY = "so-"


@dataclass(eq=False)
class Dca:
    """The DCA bot over one market's data (see the module doc)."""

    params: DcaParams
    data: MarketData
    timeframe: Timeframe = field(init=False)
    ladder: tuple[SafetyOrder, ...] = field(init=False)
    _protection: ProtectionSpec | None = field(init=False)

    def __post_init__(self) -> None:
        self.timeframe = self.params.timeframe
        self.ladder = self.params.safety_orders()
        stop = self.params.stop_loss_pct
        self._protection = None if stop is None else ProtectionSpec(stop=StopSpec(kind="percent", value=stop))

    def safety_order_price(self, base_price: Decimal, k: int) -> Decimal:
        """Trigger price of safety order `k` (1-based) of a deal whose base filled at `base_price`."""
        return self.ladder[k - 1].trigger_price(base_price)

    def take_profit_price(self, average_entry: Decimal) -> Decimal:
        """Where the deal's take profit rests for a position at `average_entry`."""
        return average_entry * (1 + self.params.take_profit_pct / 100)

    def decide(self, view: MarketView, state: BotState) -> Decision:
        memory = state.memory
        base_price, filled = memory.base_price, memory.safety_orders_filled
        for fill in state.fills:
            if fill.leg == BASE:
                base_price, filled = fill.price, 0
            elif fill.leg.startswith(SAFETY):
                filled = max(filled, int(fill.leg[len(SAFETY) :]))
        position = state.position
        if position is None:
            return self._between_deals(view, state, base_price)
        base = base_price if base_price is not None else position.average_entry
        memory = memory.model_copy(
            update={"last_decided": view.open_time, "base_price": base, "safety_orders_filled": filled}
        )
        wanted = [
            Wanted(
                leg=TAKE_PROFIT,
                side=OrderSide.SELL,
                order_type=OrderType.LIMIT,
                price=self.take_profit_price(position.average_entry),
                quantity=position.quantity,
                reduce_only=True,
                reason=f"take profit {self.params.take_profit_pct} % above the average entry",
            )
        ]
        if filled < len(self.ladder):
            k = filled + 1
            price = self.safety_order_price(base, k)
            quantity = float(self.ladder[k - 1].size) / float(price)
            wanted.append(
                Wanted(
                    leg=f"{SAFETY}{k}",
                    side=OrderSide.BUY,
                    order_type=OrderType.LIMIT,
                    price=price,
                    quantity=to_decimal(quantity),
                    reason=f"safety order {k} at {self.ladder[k - 1].deviation_pct} % below the base",
                )
            )
        intents = reconcile(state, view.open_time, wanted)
        reason = f"deal open: {filled} of {len(self.ladder)} safety orders filled"
        return decided(state, memory, intents, Why(reason=reason))

    def _between_deals(self, view: MarketView, state: BotState, base_price: Decimal | None) -> Decision:
        memory = state.memory
        intents = reconcile(state, view.open_time, [], legs=(TAKE_PROFIT, SAFETY))
        cooldown_until = memory.cooldown_until
        if base_price is not None:  # a deal was open and has closed
            cooldown_until = view.open_time + self.params.cooldown_bars * self.timeframe.ms
        memory = memory.model_copy(
            update={
                "last_decided": view.open_time,
                "base_price": None,
                "safety_orders_filled": 0,
                "cooldown_until": cooldown_until,
            }
        )
        if any(order.leg == BASE for order in state.orders):
            return decided(state, memory, intents, Why(reason="base order pending"))
        if cooldown_until is not None and view.open_time < cooldown_until:
            return decided(state, memory, intents, Why(reason="cooling down after the last deal"))
        quantity = entry_quantity(
            FIXED_QUOTE,
            float(self.params.base_order_size),
            float(state.equity),
            float(state.cash),
            view.close,
            math.nan,
        )
        if quantity <= 0.0:
            return decided(state, memory, intents, Why(reason="no deal: no cash for the base order"))
        base = place(
            state.bot_id,
            view.open_time,
            BASE,
            OrderSide.BUY,
            OrderType.MARKET,
            to_decimal(quantity),
            protection=self._protection,
            reason="base order of a new deal",
        )
        return decided(state, memory, [*intents, base], Why(reason="deal started"))

    def next_bar(self, memory: BotMemory, in_market: bool, after: int) -> int:
        frame = self.data.frame(self.timeframe)
        if in_market:
            return len(frame)
        if memory.cooldown_until is None:
            return after + 1
        return max(after + 1, int(np.searchsorted(frame.open_time, memory.cooldown_until, side="left")))
