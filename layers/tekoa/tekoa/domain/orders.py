"""Order intents: what a bot (or the position manager) wants the executor to do.

An intent is the payload of one order-queue message. It is decided by pure code
(`tekoa.engine.decide`, `tekoa.engine.protection`) and carries a `client_order_id` derived
from (bot, candle open time, leg), so the same decision made twice — a re-fired schedule, a
retried evaluation, a redelivered message — names the same order, and the executor's
unique constraint turns every repeat into a no-op.

Two kinds, told apart by `action`:

* `OrderIntent` (`place`): side, type (market / limit / stop), Decimal quantity in the base
  currency, limit or stop price, `reduce_only`, and the protection to attach to the position
  the order opens (stop loss, take-profit ladder, breakeven rule);
* `CancelIntent` (`cancel`): withdraw one resting order, named by its client order id.

Prices and quantities are Decimal and serialise as strings, so a message round-trips exactly.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

CLIENT_ORDER_ID_PREFIX = "tk"
CLIENT_ORDER_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
"""Binance's limit for newClientOrderId (and within every other exchange's): 36 of [A-Za-z0-9_-]."""


def client_order_id(bot_id: str, candle_open_time: int, leg: str) -> str:
    """The id of the order a bot decides on the candle opening at `candle_open_time` for `leg`.

    `tk` plus the first 32 hex digits (128 bits) of SHA-256 over the three parts: 34
    characters of [0-9a-z], within every exchange's limit, and the same for the same inputs in
    every process. Legs name the order's role within the decision (`entry`, `exit`,
    `grid-b3`, `so-2`, `stop`, `tp-1`, ...).
    """
    digest = hashlib.sha256(f"{bot_id}|{candle_open_time}|{leg}".encode()).hexdigest()
    return CLIENT_ORDER_ID_PREFIX + digest[:32]


class FrozenModel(BaseModel):
    """Immutable, strict about unknown fields; Decimals serialise as strings."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderSide(StrEnum):
    """Buy or sell, in the base currency."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the change in the base position per unit."""
        return 1 if self is OrderSide.BUY else -1

    @property
    def opposite(self) -> OrderSide:
        """The side that undoes this one."""
        return OrderSide.SELL if self is OrderSide.BUY else OrderSide.BUY


class OrderType(StrEnum):
    """Market: now, at whatever price. Limit: at `price` or better. Stop: a market order once
    the market trades at `price` (buy stops above, sell stops below the market)."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class StopSpec(FrozenModel):
    """The protective stop of the position an entry opens, resolved when the entry fills.

    * `price`: at the absolute price `value`;
    * `distance`: `value` quote units from the fill price (an ATR multiple, resolved when
      the decision is made);
    * `percent`: `value` percent from the fill price;
    * `trailing_percent`: `value` percent from the best price since entry, moving only in the
      position's favour; with `activation_pct` it starts trailing once the best price is that
      many percent beyond the entry (before that there is no stop).
    """

    kind: Literal["price", "distance", "percent", "trailing_percent"]
    value: PositiveDecimal
    activation_pct: PositiveDecimal | None = None

    @model_validator(mode="after")
    def _activation_only_when_trailing(self) -> StopSpec:
        if self.activation_pct is not None and self.kind != "trailing_percent":
            raise ValueError("activation_pct applies only to a trailing_percent stop")
        if self.kind in ("percent", "trailing_percent") and self.value >= 100:
            raise ValueError("a percent stop must be below 100 %")
        return self


class TargetSpec(FrozenModel):
    """One take-profit target: close `size_fraction` of the entry quantity when reached.

    * `percent`: `value` percent beyond the fill price;
    * `r_multiple`: `value` times the initial stop distance beyond the fill price;
    * `price`: at the absolute price `value`.
    """

    kind: Literal["percent", "r_multiple", "price"]
    value: PositiveDecimal
    size_fraction: Annotated[Decimal, Field(gt=0, le=1)] = Decimal(1)


class ProtectionSpec(FrozenModel):
    """Exits attached to the position an entry opens: checked on every trade by the
    position manager and on every candle by the backtester (`tekoa.engine.protection`)."""

    stop: StopSpec | None = None
    targets: tuple[TargetSpec, ...] = Field((), max_length=10)
    breakeven_after_first_target: bool = Field(
        False, description="Move the stop to the entry price once the first target is hit."
    )

    @model_validator(mode="after")
    def _coherent(self) -> ProtectionSpec:
        if any(t.kind == "r_multiple" for t in self.targets) and (
            self.stop is None or self.stop.kind == "trailing_percent"
        ):
            raise ValueError("r_multiple targets need a fixed initial stop to measure the risk")
        if sum((t.size_fraction for t in self.targets), Decimal(0)) > 1:
            raise ValueError("target fractions may close at most the whole entry (1)")
        return self


NATIVE_STOP_LEG = "nstop-"
"""Leg prefix of a position's stop resting on the exchange (see tekoa.market.stream.positions)."""


class OrderIntent(FrozenModel):
    """Place one order. `client_order_id` is `client_order_id(bot_id, candle_open_time, leg)`."""

    action: Literal["place"] = "place"
    client_order_id: str
    bot_id: str
    candle_open_time: int = Field(description="Open time (ms) of the candle whose close decided it.")
    leg: str = Field(min_length=1, max_length=40, description="The order's role: entry, exit, so-2, ...")
    side: OrderSide
    type: OrderType
    quantity: PositiveDecimal = Field(description="Base-currency amount, before market rounding.")
    price: PositiveDecimal | None = Field(None, description="Limit price (limit) or trigger price (stop).")
    reduce_only: bool = False
    protection: ProtectionSpec | None = None
    reason: str = Field("", max_length=200)

    @field_validator("client_order_id")
    @classmethod
    def _exchange_safe(cls, value: str) -> str:
        if not CLIENT_ORDER_ID_PATTERN.match(value):
            raise ValueError("client_order_id must be 1-36 characters of [A-Za-z0-9_-]")
        return value

    @model_validator(mode="after")
    def _price_matches_type(self) -> OrderIntent:
        if (self.type is OrderType.MARKET) != (self.price is None):
            raise ValueError("limit and stop orders need a price; market orders take none")
        if self.reduce_only and self.protection is not None:
            raise ValueError("an exit (reduce_only) order carries no protection")
        return self


class CancelIntent(FrozenModel):
    """Cancel the resting order `target_client_order_id`; its own id is derived like any leg's."""

    action: Literal["cancel"] = "cancel"
    client_order_id: str
    bot_id: str
    candle_open_time: int
    target_client_order_id: str
    leg: str = Field(min_length=1, max_length=40, description="Leg of the order being cancelled.")
    reason: str = Field("", max_length=200)


Intent = Annotated[OrderIntent | CancelIntent, Field(discriminator="action")]
"""One order-queue payload: `{"action": "place", ...}` or `{"action": "cancel", ...}`."""

INTENT_ADAPTER: TypeAdapter[Intent] = TypeAdapter(Intent)
"""Validates and serialises an `Intent` outside a containing model (queue messages)."""


def place(
    bot_id: str,
    candle_open_time: int,
    leg: str,
    side: OrderSide,
    order_type: OrderType,
    quantity: Decimal,
    *,
    price: Decimal | None = None,
    reduce_only: bool = False,
    protection: ProtectionSpec | None = None,
    reason: str = "",
) -> OrderIntent:
    """An `OrderIntent` whose id is derived from (bot, candle, leg)."""
    return OrderIntent(
        client_order_id=client_order_id(bot_id, candle_open_time, leg),
        bot_id=bot_id,
        candle_open_time=candle_open_time,
        leg=leg,
        side=side,
        type=order_type,
        quantity=quantity,
        price=price,
        reduce_only=reduce_only,
        protection=protection,
        reason=reason,
    )


def cancel(
    bot_id: str, candle_open_time: int, target_client_order_id: str, leg: str, reason: str
) -> CancelIntent:
    """A `CancelIntent` for one resting order; its id is derived from the target's id."""
    return CancelIntent(
        client_order_id=client_order_id(bot_id, candle_open_time, f"cancel:{target_client_order_id}"),
        bot_id=bot_id,
        candle_open_time=candle_open_time,
        target_client_order_id=target_client_order_id,
        leg=leg,
        reason=reason,
    )
