"""The order queue's messages: one pydantic model per kind, told apart by `kind`.

* `place`: a bot's `OrderIntent` (from the evaluator or the position manager). The executor
  claims its client order id, checks it and sends it.
* `execute`: an order the API already claimed (a manual order, a position close): send it.
* `cancel`: withdraw a working order, named by its client order id.
* `trigger`: the market reached a resting paper order (a trade in the market stream, or a
  candle in the sweep); the executor fills it at that price.

The FIFO group is the account, so one account's messages are handled in order; the
deduplication id is the order's client id (`dedup_id`), so a send repeated within SQS's
five-minute window is dropped, and the database's unique constraint catches the rest.
"""

from __future__ import annotations

from decimal import Decimal
from hashlib import sha256
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from tekoa.domain.exchanges import ExchangeId
from tekoa.domain.orders import CLIENT_ORDER_ID_PATTERN, CancelIntent, OrderIntent
from tekoa.domain.symbols import Symbol

ClientOrderId = Annotated[str, Field(pattern=CLIENT_ORDER_ID_PATTERN.pattern)]
Millis = Annotated[int, Field(ge=0, le=2**53)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: UUID
    account_id: UUID
    enqueued_at: Millis = Field(description="When the producer sent it (UTC ms).")


class PlaceMessage(_Message):
    """Place the order a bot decided on."""

    kind: Literal["place"] = "place"
    bot_id: UUID
    exchange: ExchangeId
    symbol: Symbol
    intent: OrderIntent

    @model_validator(mode="after")
    def _same_bot(self) -> PlaceMessage:
        if str(self.bot_id) != self.intent.bot_id:
            raise ValueError("intent.bot_id must be the message's bot_id")
        return self


class ExecuteMessage(_Message):
    """Send an order that was claimed (and its funds held) by the API."""

    kind: Literal["execute"] = "execute"
    order_id: UUID
    client_order_id: ClientOrderId


class CancelMessage(_Message):
    """Cancel a working order of the account."""

    kind: Literal["cancel"] = "cancel"
    target_client_order_id: ClientOrderId
    reason: str = Field("", max_length=200)
    intent: CancelIntent | None = Field(None, description="The bot's decision, when a bot cancels.")


class TriggerMessage(_Message):
    """The market reached a resting paper order: fill it on this trade (or candle)."""

    kind: Literal["trigger"] = "trigger"
    order_id: UUID
    client_order_id: ClientOrderId
    trade_id: str = Field(min_length=1, max_length=100)
    trade_time: Millis
    price: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="The trade's price (from the market stream)."
    )
    candle: tuple[Decimal, Decimal, Decimal, Decimal] | None = Field(
        None, description="open, high, low, close of a stored candle (from the sweep)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> TriggerMessage:
        if (self.price is None) == (self.candle is None):
            raise ValueError("a trigger carries either a trade price or a candle")
        return self


OrderMessage = Annotated[
    PlaceMessage | ExecuteMessage | CancelMessage | TriggerMessage, Field(discriminator="kind")
]
MESSAGE_ADAPTER: TypeAdapter[OrderMessage] = TypeAdapter(OrderMessage)


def parse_message(body: str) -> OrderMessage:
    """The message in an SQS body; pydantic's ValidationError when it is malformed."""
    return MESSAGE_ADAPTER.validate_json(body)


def dump_message(message: OrderMessage) -> str:
    return MESSAGE_ADAPTER.dump_json(message).decode()


def dedup_id(message: OrderMessage) -> str:
    """SQS MessageDeduplicationId: the business key of what the message asks."""
    if isinstance(message, PlaceMessage):
        return message.intent.client_order_id
    if isinstance(message, ExecuteMessage):
        return message.client_order_id
    if isinstance(message, CancelMessage):
        return f"cancel-{message.target_client_order_id}"
    # Per trade: a trigger the executor found short of the order (its exact price check is
    # the one that counts) must not mute the next trade's, nor the candle sweep's.
    trade = message.trade_id if len(message.trade_id) <= 64 else sha256(message.trade_id.encode()).hexdigest()
    return f"trigger-{message.order_id}-{trade}"


def group_id(message: OrderMessage) -> str:
    """SQS MessageGroupId: the account, so one account's orders are handled one at a time."""
    return str(message.account_id)
