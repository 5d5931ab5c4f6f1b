"""Trading records and rules: accounts, balances, orders and their status machine, fills,
positions and round trips.

Orders move through `ORDER_TRANSITIONS`; anything not in the table raises
`IllegalOrderTransition`, so a late or duplicated exchange report can never move a filled
order back to open. Quantities and prices are Decimal; the repositories in `tekoa.db` return
these records and the API shows them to their owner.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tekoa.domain.bots import TradingMode
from tekoa.domain.orders import OrderSide, OrderType
from tekoa.domain.trading import ProtectionState
from tekoa.domain.wire import DecimalText, EpochMillis
from tekoa.errors import Conflict, NotFound, ValidationFailed


class TradingState(StrEnum):
    """What an account (or the whole platform) may do right now."""

    ACTIVE = "active"
    REDUCING = "reducing"
    """Exits only: orders that shrink a position."""
    HALTED = "halted"


class OrderStatus(StrEnum):
    NEW = "new"
    """Claimed by the platform (funds held); not yet sent anywhere."""
    SUBMITTED = "submitted"
    """Being sent to the exchange: the outcome is known only after a look-up."""
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES: frozenset[OrderStatus] = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
WORKING_STATUSES: frozenset[OrderStatus] = frozenset(
    {OrderStatus.NEW, OrderStatus.SUBMITTED, OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED}
)


class OrderAction(StrEnum):
    """What may happen to an order."""

    SUBMIT = "submit"
    ACCEPT = "accept"
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    CANCEL = "cancel"
    REJECT = "reject"
    EXPIRE = "expire"


_ANYWHERE_BEFORE_FINAL = {
    OrderAction.PARTIAL_FILL: OrderStatus.PARTIALLY_FILLED,
    OrderAction.FILL: OrderStatus.FILLED,
    OrderAction.CANCEL: OrderStatus.CANCELED,
    OrderAction.EXPIRE: OrderStatus.EXPIRED,
}

ORDER_TRANSITIONS: dict[tuple[OrderStatus, OrderAction], OrderStatus] = {
    (OrderStatus.NEW, OrderAction.SUBMIT): OrderStatus.SUBMITTED,
    (OrderStatus.NEW, OrderAction.ACCEPT): OrderStatus.OPEN,
    (OrderStatus.NEW, OrderAction.REJECT): OrderStatus.REJECTED,
    **{(OrderStatus.NEW, action): status for action, status in _ANYWHERE_BEFORE_FINAL.items()},
    (OrderStatus.SUBMITTED, OrderAction.ACCEPT): OrderStatus.OPEN,
    (OrderStatus.SUBMITTED, OrderAction.REJECT): OrderStatus.REJECTED,
    **{(OrderStatus.SUBMITTED, action): status for action, status in _ANYWHERE_BEFORE_FINAL.items()},
    **{(OrderStatus.OPEN, action): status for action, status in _ANYWHERE_BEFORE_FINAL.items()},
    **{(OrderStatus.PARTIALLY_FILLED, action): status for action, status in _ANYWHERE_BEFORE_FINAL.items()},
}
"""Every legal (status, action) pair and the status it leads to. Paper orders skip `submitted`
(nothing leaves the platform); an exchange never rejects an order it has accepted; a final
status has no way out."""


class IllegalOrderTransition(Conflict):
    """The order cannot make this move (e.g. canceling a filled order)."""

    code = "ILLEGAL_ORDER_TRANSITION"

    def __init__(self, current: OrderStatus, action: OrderAction) -> None:
        super().__init__(
            f"cannot {action.value.replace('_', ' ')} an order that is {current}", field="status"
        )
        self.current = current
        self.action = action


def order_transition(current: OrderStatus, action: OrderAction) -> OrderStatus:
    """The status after `action`, or IllegalOrderTransition when the table forbids it."""
    try:
        return ORDER_TRANSITIONS[(current, action)]
    except KeyError:
        raise IllegalOrderTransition(current, action) from None


class RejectCode(StrEnum):
    """Why the platform refused an order (also the API's error code when it answers at once)."""

    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    TRADING_HALTED = "TRADING_HALTED"
    REDUCE_ONLY = "REDUCE_ONLY"
    """The account is reducing, or the order is reduce-only, and it would not shrink a position."""
    NO_POSITION = "NO_POSITION"
    """A sell larger than the position it belongs to (Tekoa does not sell short)."""
    INVALID_ORDER = "INVALID_ORDER"
    """Precision, minimums, unknown or unsupported market."""
    STALE_PRICE = "STALE_PRICE"
    EXCHANGE_REJECTED = "EXCHANGE_REJECTED"
    NO_CREDENTIAL = "NO_CREDENTIAL"
    LOST = "LOST"
    """The exchange never knew the order (repeated look-ups by client id found nothing)."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class Account(_Record):
    """A user's trading account on one exchange in one mode."""

    id: UUID
    exchange: str
    mode: TradingMode
    quote_currency: str
    starting_balance: DecimalText | None = Field(description="Paper accounts: what a reset restores.")
    credential_id: UUID | None = Field(description="Live accounts: the broker credential that trades.")
    trading_state: TradingState
    trading_state_reason: str | None
    resets: int
    created_at: EpochMillis
    updated_at: EpochMillis


class AssetBalance(_Record):
    """What an account holds of one asset: `available` to spend, `held` by open orders."""

    asset: str
    available: DecimalText
    held: DecimalText

    @property
    def total(self) -> Decimal:
        return self.available + self.held


class Order(_Record):
    """An order and where it stands."""

    id: UUID
    account_id: UUID
    bot_id: UUID | None
    position_id: UUID | None
    client_order_id: str
    exchange: str
    symbol: str
    side: OrderSide
    type: OrderType
    quantity: DecimalText
    limit_price: DecimalText | None
    stop_price: DecimalText | None
    reduce_only: bool
    status: OrderStatus
    filled_quantity: DecimalText
    average_price: DecimalText | None
    fees: dict[str, DecimalText] = Field(description="Fees paid so far, per currency.")
    held_asset: str | None
    held_amount: DecimalText = Field(description="Funds this order still holds (zero once final).")
    exchange_order_id: str | None
    reason: str | None = Field(description="Why the order was rejected, canceled or expired.")
    reject_code: RejectCode | None
    intent: dict[str, Any] = Field(
        description="What the bot asked for besides the order (stop, targets, why)."
    )
    not_found_count: int
    created_at: EpochMillis
    updated_at: EpochMillis
    submitted_at: EpochMillis | None
    closed_at: EpochMillis | None

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_quantity


class OrderEvent(_Record):
    """One entry of an order's append-only history."""

    id: int
    order_id: UUID
    kind: str
    from_status: OrderStatus | None
    to_status: OrderStatus
    detail: dict[str, Any]
    at: EpochMillis


class Fill(_Record):
    """One execution of an order, recorded once per exchange trade id."""

    id: UUID
    order_id: UUID
    trade_id: str
    quantity: DecimalText
    price: DecimalText
    fee: DecimalText
    fee_currency: str
    liquidity: str
    executed_at: int = Field(description="UTC ms, from the exchange (or the price event, on paper).")
    created_at: EpochMillis


class Position(_Record):
    """A bot's (or manual) holding of one market, from the first entry until flat again."""

    id: UUID
    account_id: UUID
    bot_id: UUID | None
    exchange: str
    symbol: str
    quantity: DecimalText
    average_entry: DecimalText
    entry_quantity: DecimalText
    exit_quantity: DecimalText
    exit_value: DecimalText
    realized_pnl: DecimalText = Field(description="Net of every fee paid on the position, in quote currency.")
    fees: DecimalText = Field(description="Fees paid on the position, in quote currency.")
    protection: ProtectionState | None = Field(
        description="Stop, take-profit ladder and trailing anchor armed when the entry filled."
    )
    opened_at: EpochMillis
    closed_at: EpochMillis | None
    close_reason: str | None
    updated_at: EpochMillis

    @property
    def open(self) -> bool:
        return self.closed_at is None


class AccountNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("account not found")


class OrderNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("order not found")


class PositionNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("position not found")


class InsufficientBalance(ValidationFailed):
    """The account cannot fund the order."""

    code = "INSUFFICIENT_BALANCE"


class OrderRefused(ValidationFailed):
    """The platform refused an order before it went anywhere; `reject_code` says why."""

    def __init__(self, reject_code: RejectCode, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.reject_code = reject_code
        self.code = reject_code.value
