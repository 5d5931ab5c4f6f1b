"""A bot's trading state as the decision function sees it: position, resting orders, recent
fills, memory and money. Plain data that round-trips through JSON exactly (Decimals as
strings), so the evaluator can build it from the database and store the memory back, and the
backtester can build it from its fill model — one shape for both.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from tekoa.domain.orders import FrozenModel, OrderSide, OrderType

Amount = Annotated[Decimal, Field(allow_inf_nan=False)]
Positive = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class PositionSide(StrEnum):
    """Long profits from a rise, short from a fall."""

    LONG = "long"
    SHORT = "short"

    @property
    def sign(self) -> int:
        """+1 long, -1 short."""
        return 1 if self is PositionSide.LONG else -1

    @property
    def entry_side(self) -> OrderSide:
        """The order side that opens or adds to the position."""
        return OrderSide.BUY if self is PositionSide.LONG else OrderSide.SELL

    @property
    def exit_side(self) -> OrderSide:
        """The order side that reduces or closes the position."""
        return self.entry_side.opposite


class ArmedTarget(FrozenModel):
    """A take-profit level of an open position: close `size_fraction` of the entry quantity."""

    price: Positive
    size_fraction: Annotated[Decimal, Field(gt=0, le=1)]
    hit: bool = False


class ProtectionState(FrozenModel):
    """The protective exits armed on an open position, resolved from a `ProtectionSpec` when
    the entry filled, and moved by `tekoa.engine.protection` as prices arrive.

    The stop in force is the tighter of `stop` (fixed, or the entry after the first target
    when `breakeven_after_first_target`) and, once trailing is active, `anchor` less
    `trailing_pct` percent (for a short: plus).
    """

    entry_price: Positive = Field(description="Fill price of the entry: the breakeven level.")
    stop: Positive | None = None
    trailing_pct: Positive | None = None
    trailing_activation: Positive | None = Field(
        None, description="Best price from which trailing starts; none = trailing from the entry."
    )
    anchor: Positive = Field(description="Best price since the entry (highest for a long).")
    targets: tuple[ArmedTarget, ...] = ()
    breakeven_after_first_target: bool = False


class Position(FrozenModel):
    """The bot's open position in its market."""

    side: PositionSide
    quantity: Positive = Field(description="Open quantity, base currency.")
    average_entry: Positive
    entry_quantity: Positive = Field(description="Quantity of the opening fill: targets are fractions of it.")
    opened_at: int = Field(description="Open time (ms) of the candle in which the opening fill happened.")
    protection: ProtectionState | None = None


class RestingOrder(FrozenModel):
    """An order the bot placed that is not yet filled or cancelled."""

    client_order_id: str
    leg: str
    side: OrderSide
    type: OrderType
    price: Positive | None = None
    quantity: Positive
    reduce_only: bool = False
    placed_at: int = Field(description="Open time (ms) of the candle whose decision placed it.")


class Fill(FrozenModel):
    """One execution of one of the bot's orders (or of a protective exit)."""

    client_order_id: str
    leg: str
    side: OrderSide
    quantity: Positive
    price: Positive
    fee: Amount = Decimal(0)
    time: int = Field(description="Open time (ms) of the candle in which it executed.")


class BotMemory(FrozenModel):
    """What a bot remembers between decisions besides its orders and position.

    Each bot type uses its own fields; the rest stay at their defaults.
    """

    last_decided: int | None = Field(None, description="Open time of the last candle decided on.")
    entries: tuple[int, ...] = Field((), description="Open times of recent entries (max trades per hour).")
    cooldown_until: int | None = Field(None, description="No new entry before this candle open time.")
    base_price: Positive | None = Field(None, description="DCA: fill price of the deal's base order.")
    safety_orders_filled: int = Field(0, ge=0, description="DCA: safety orders filled in this deal.")
    grid: dict[int, OrderSide] = Field(
        default_factory=dict, description="Grid: level index -> side of the order armed there."
    )
    stopped: bool = Field(False, description="Grid: closed by its stop or take-profit; trades no more.")
    armed_at: int | None = Field(None, description="Dip: candle open time at which a dip armed the buy.")
    armed_high: Positive | None = Field(None, description="Dip: the recent high the dip was measured from.")
    armed_low: Positive | None = Field(None, description="Dip: lowest low since the dip armed.")


class BotState(FrozenModel):
    """Everything `decide` knows about one bot besides the market."""

    bot_id: str
    cash: Amount = Field(description="Quote currency available for new orders.")
    equity: Amount = Field(description="Cash plus the position valued at the last close.")
    position: Position | None = None
    orders: tuple[RestingOrder, ...] = ()
    fills: tuple[Fill, ...] = Field((), description="Fills since the previous decision, oldest first.")
    memory: BotMemory = BotMemory()

    @classmethod
    def fresh(cls, bot_id: str, cash: Decimal) -> BotState:
        """A bot that has not traded yet."""
        return cls(bot_id=bot_id, cash=cash, equity=cash)
