"""The grid bot: a ladder of limit orders between `lower_price` and `upper_price` that buys
low and sells one level higher, over and over.

* **start**: with no position and no orders, a buy is armed at every level below the close
  (levels are `GridParams.grid_prices`). Nothing is armed above: a spot grid sells only what it
  bought.
* **re-arming**: when the buy at level i fills, a sell of the same quantity is armed at level
  i+1; when the sell at level j fills, the buy at level j-1 is armed again. A level holds at
  most one order. With a quote order size, the pair (i, i+1) trades `amount / level_i` base.
* **leaving the range**: the buys carry a stop at `stop_loss_price` and a target at
  `take_profit_price` (both outside the range), so the position manager closes the grid's
  position the moment price gets there; a close beyond either also stops the grid. A stopped
  grid cancels its orders, closes what is left at market and trades no more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from tekoa.domain.orders import OrderSide, OrderType, ProtectionSpec, StopSpec, TargetSpec, place
from tekoa.domain.timeframes import Timeframe
from tekoa.domain.trading import BotMemory, BotState
from tekoa.engine.decision import Decision, SignalIndex, Wanted, Why, decided, reconcile, to_decimal
from tekoa.engine.market import MarketData, MarketView
from tekoa.strategies.params import GridParams

LEG = "grid-"


def grid_leg(side: OrderSide, level: int) -> str:
    """`grid-b3` (buy at level 3) or `grid-s4`."""
    return f"{LEG}{'b' if side is OrderSide.BUY else 's'}{level}"


def parse_grid_leg(leg: str) -> tuple[OrderSide, int] | None:
    """The (side, level) a grid leg names, or None for other legs."""
    if not leg.startswith(LEG) or len(leg) < len(LEG) + 2:
        return None
    side = OrderSide.BUY if leg[len(LEG)] == "b" else OrderSide.SELL
    return side, int(leg[len(LEG) + 1 :])


@dataclass(eq=False)
class Grid:
    """The grid bot over one market's data (see the module doc)."""

    params: GridParams
    data: MarketData
    timeframe: Timeframe = field(init=False)
    levels: tuple[Decimal, ...] = field(init=False)
    _outside: SignalIndex = field(init=False)
    _startable: SignalIndex = field(init=False)
    _protection: ProtectionSpec | None = field(init=False)
    _wanted_at: dict[tuple[int, OrderSide], Wanted] = field(init=False, default_factory=dict)
    """The order wanted at each (level, side): a function of the params, built once."""

    def __post_init__(self) -> None:
        self.timeframe = self.params.timeframe
        self.levels = self.params.grid_prices()
        close = self.data.frame(self.timeframe).close
        stop, take = self.params.stop_loss_price, self.params.take_profit_price
        outside = np.zeros(close.shape[0], dtype=np.bool_)
        if stop is not None:
            outside |= close <= float(stop)
        if take is not None:
            outside |= close >= float(take)
        self._outside = SignalIndex(outside)
        self._startable = SignalIndex((close > float(self.levels[0])) | outside)
        self._protection = (
            None
            if stop is None and take is None
            else ProtectionSpec(
                stop=None if stop is None else StopSpec(kind="price", value=stop),
                targets=() if take is None else (TargetSpec(kind="price", value=take),),
            )
        )

    def pair_quantity(self, lower_level: int) -> Decimal:
        """Base quantity traded by the pair (lower_level, lower_level + 1)."""
        size = self.params.order_size
        if size.unit == "base":
            return size.amount
        return to_decimal(float(size.amount) / float(self.levels[lower_level]))

    def decide(self, view: MarketView, state: BotState) -> Decision:
        memory = state.memory
        grid = dict(memory.grid)
        stopped = memory.stopped
        for fill in state.fills:
            parsed = parse_grid_leg(fill.leg)
            if parsed is None:
                stopped = stopped or fill.leg == "stop" or fill.leg.startswith("target")
                continue
            side, level = parsed
            grid.pop(level, None)
            opposite = level + 1 if side is OrderSide.BUY else level - 1
            if 0 <= opposite < len(self.levels) and opposite not in grid:
                grid[opposite] = side.opposite
        reason = "grid stopped"
        if not stopped and self._outside.mask[view.bar]:
            stopped, reason = True, "price left the range beyond the stop or take-profit"
        if stopped:
            intents = reconcile(state, view.open_time, [])
            if state.position is not None:
                intents.append(
                    place(
                        state.bot_id,
                        view.open_time,
                        "close",
                        state.position.side.exit_side,
                        OrderType.MARKET,
                        state.position.quantity,
                        reduce_only=True,
                        reason=reason,
                    )
                )
            stopped_memory = memory.model_copy(
                update={"last_decided": view.open_time, "grid": {}, "stopped": True}
            )
            return decided(state, stopped_memory, intents, Why(reason=reason))
        started = ""
        if not grid and state.position is None:
            grid = {i: OrderSide.BUY for i, level in enumerate(self.levels) if float(level) < view.close}
            started = "grid armed below the close; "
        wanted = [self._wanted_order(level, side) for level, side in sorted(grid.items())]
        intents = reconcile(state, view.open_time, wanted, legs=(LEG,))
        memory = memory.model_copy(update={"last_decided": view.open_time, "grid": grid})
        buys = sum(1 for side in grid.values() if side is OrderSide.BUY)
        why = Why(reason=f"{started}{buys} buys and {len(grid) - buys} sells armed")
        return decided(state, memory, intents, why)

    def _wanted_order(self, level: int, side: OrderSide) -> Wanted:
        wanted = self._wanted_at.get((level, side))
        if wanted is None:
            wanted = self._wanted_at[(level, side)] = self._wanted(level, side)
        return wanted

    def _wanted(self, level: int, side: OrderSide) -> Wanted:
        pair = level if side is OrderSide.BUY else level - 1
        return Wanted(
            leg=grid_leg(side, level),
            side=side,
            order_type=OrderType.LIMIT,
            price=self.levels[level],
            quantity=self.pair_quantity(pair),
            reduce_only=side is OrderSide.SELL,
            protection=self._protection if side is OrderSide.BUY else None,
            reason=f"grid {side.value} at level {level}",
        )

    def next_bar(self, memory: BotMemory, in_market: bool, after: int) -> int:
        if memory.stopped:
            return len(self._outside.mask)
        if in_market or memory.grid:
            return self._outside.next_after(after)
        return self._startable.next_after(after)
