"""Booking: what an order's claim, moves and fills change, recorded into the transaction's
`Writes`.

Every function runs inside the caller's transaction, after the caller locked the account row
(`order_context.load_order_context`, or `accounts.get_account(for_update=True)`): that lock
serialises everything that moves one account's money, orders and positions, so what was read
under it cannot change before the commit. A fill records the fill row (once per trade id), the
position, the ledger postings, the order, its event, the outbox event and the activity line —
all written by one flush, all or nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from tekoa.aws.events import BusEvent
from tekoa.db import orders as order_rows
from tekoa.db import positions as position_rows
from tekoa.domain.candles import decimal_text
from tekoa.domain.execution import (
    Account,
    InsufficientBalance,
    Order,
    OrderAction,
    OrderStatus,
    Position,
    RejectCode,
    order_transition,
)
from tekoa.domain.orders import OrderSide
from tekoa.domain.resources import ActivityLevel
from tekoa.domain.trading import ProtectionState
from tekoa.exchanges.rules import MarketRules
from tekoa.execution import ledger
from tekoa.execution.positions import apply_fill, fee_in_quote
from tekoa.execution.writes import Writes
from tekoa.names import EventType
from tekoa.observability import logger

Available = Callable[[str], Decimal]
"""The available balance of an asset, as the caller knows it under the account's lock
(including this transaction's postings)."""


@dataclass(frozen=True, slots=True)
class Booked:
    """The state after a booking, and its outbox events (id, event) to publish after the commit."""

    order: Order
    position: Position | None = None
    events: tuple[tuple[UUID, BusEvent], ...] = ()
    duplicate: bool = False


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def order_event(detail_type: str, account: Account, order: Order, user_id: UUID) -> BusEvent:
    """`order.updated` / `order.filled`: the order as its owner sees it (ms, decimal strings)."""
    return BusEvent(
        detail_type=detail_type,
        detail={
            "user_id": str(user_id),
            "account_id": str(account.id),
            "mode": account.mode.value,
            "order_id": str(order.id),
            "bot_id": None if order.bot_id is None else str(order.bot_id),
            "client_order_id": order.client_order_id,
            "exchange": order.exchange,
            "symbol": order.symbol,
            "side": order.side.value,
            "type": order.type.value,
            "status": order.status.value,
            "quantity": decimal_text(order.quantity),
            "filled_quantity": decimal_text(order.filled_quantity),
            "average_price": None if order.average_price is None else decimal_text(order.average_price),
            "reason": order.reason,
            "at": now_ms(),
        },
    )


def claim(
    writes: Writes,
    user_id: UUID,
    account: Account,
    order: Order,
    *,
    hold_asset: str | None,
    hold_amount: Decimal,
    source: str,
) -> Order:
    """A new order with what it holds, its `created` event and its hold posting.

    The caller checked under the account's lock that no order has this client id.
    """
    claimed = writes.order(
        user_id, order.model_copy(update={"held_asset": hold_asset, "held_amount": hold_amount}), new=True
    )
    writes.event(user_id, order_rows.NewEvent(order.id, "created", None, OrderStatus.NEW, {"source": source}))
    if hold_asset is not None and hold_amount > 0:
        writes.post(user_id, account.id, [ledger.hold(hold_asset, hold_amount)], order_id=order.id)
    return claimed


def move(
    writes: Writes,
    user_id: UUID,
    account: Account,
    order: Order,
    action: OrderAction,
    *,
    detail: dict[str, Any] | None = None,
    **changes: Any,
) -> Booked:
    """Move an order (submit, accept) and record the event; `changes` update other fields."""
    status = order_transition(order.status, action)
    moved = writes.order(user_id, order_rows.stamped(order.model_copy(update={"status": status, **changes})))
    writes.event(user_id, order_rows.NewEvent(order.id, action.value, order.status, status, detail or {}))
    return Booked(
        moved,
        events=(writes.publish(user_id, order_event(EventType.ORDER_UPDATED, account, moved, user_id)),),
    )


def count_not_found(writes: Writes, user_id: UUID, order: Order) -> Order:
    """One more "not found" answer to a look-up by client id."""
    counted = writes.order(
        user_id, order_rows.stamped(order.model_copy(update={"not_found_count": order.not_found_count + 1}))
    )
    writes.event(
        user_id,
        order_rows.NewEvent(
            order.id, "not_found", order.status, order.status, {"lookups": counted.not_found_count}
        ),
    )
    return counted


def finish(
    writes: Writes,
    user_id: UUID,
    account: Account,
    order: Order,
    action: OrderAction,
    *,
    reason: str | None,
    reject_code: RejectCode | None = None,
    detail: dict[str, Any] | None = None,
) -> Booked:
    """End an order without (further) fills: cancel, reject or expire; release what it holds."""
    status = order_transition(order.status, action)
    if order.held_amount > 0:
        assert order.held_asset is not None
        writes.post(
            user_id, account.id, [ledger.release(order.held_asset, order.held_amount)], order_id=order.id
        )
    ended = writes.order(
        user_id,
        order_rows.stamped(
            order.model_copy(
                update={
                    "status": status,
                    "held_amount": Decimal(0),
                    "reason": reason,
                    "reject_code": reject_code,
                }
            )
        ),
    )
    event_detail = {
        "reason": reason,
        **({"code": reject_code.value} if reject_code else {}),
        **(detail or {}),
    }
    writes.event(user_id, order_rows.NewEvent(order.id, action.value, order.status, status, event_detail))
    level = ActivityLevel.WARNING if action is OrderAction.REJECT else ActivityLevel.INFO
    if reject_code is RejectCode.LOST:
        level = ActivityLevel.ERROR
    writes.note(
        user_id,
        level=level,
        message=f"{_describe(order, account)} {status.value}" + (f": {reason}" if reason else ""),
        bot_id=order.bot_id,
        data={"order_id": str(order.id), "client_order_id": order.client_order_id, "status": status.value},
    )
    return Booked(
        ended,
        events=(writes.publish(user_id, order_event(EventType.ORDER_UPDATED, account, ended, user_id)),),
    )


def book_fill(
    writes: Writes,
    user_id: UUID,
    account: Account,
    order: Order,
    rules: MarketRules,
    fill: order_rows.NewFill,
    *,
    position: Position | None,
    booked_trade_ids: set[str],
    available: Available,
    protection: ProtectionState | None = None,
    cover_shortfall: bool = False,
) -> Booked:
    """Record one execution of `order` exactly once.

    `position` is the order's open position (None: none yet) and `booked_trade_ids` the trade
    ids already recorded for the order (updated here): a trade already booked is a no-op
    (`duplicate`). The ledger pays from the order's hold first; a fill that would need more
    than the hold and the available balance together raises InsufficientBalance before
    anything is recorded — unless `cover_shortfall` (live: the exchange executed it, so the
    books must follow), which posts the difference as an adjustment and reports the drift.
    """
    if fill.trade_id in booked_trade_ids:
        return Booked(order, position=position, duplicate=True)
    if fill.quantity > order.remaining:
        raise ValueError(f"fill of {fill.quantity} exceeds the order's remaining {order.remaining}")
    fee_quote = fee_in_quote(
        fill.fee, fill.fee_currency, base=rules.base, quote=rules.quote, price=fill.price
    )
    posting = ledger.fill(
        side=order.side,
        base=rules.base,
        quote=rules.quote,
        quantity=fill.quantity,
        price=fill.price,
        fee=fill.fee,
        fee_currency=fill.fee_currency,
        held=order.held_amount,
    )
    shortfalls = _shortfalls(order, rules, fill, posting.from_available, available)
    if shortfalls and not cover_shortfall:
        asset, missing = shortfalls[0]
        raise InsufficientBalance(f"the fill needs {missing} {asset} more than the account has available")
    recorded = order_rows.recorded_fill(order.id, fill)
    writes.fill(user_id, recorded)
    booked_trade_ids.add(fill.trade_id)
    if shortfalls:
        logger.warning(
            "live fill beyond the books; adjusting",
            extra={"order_id": str(order.id), "shortfalls": str(shortfalls)},
        )
        writes.post(user_id, account.id, [ledger.adjustment(a, m) for a, m in shortfalls], order_id=order.id)

    moved = _move_position(writes, user_id, account, order, fill, fee_quote, position, protection)

    filled = order.filled_quantity + fill.quantity
    complete = filled == order.quantity
    held_left = order.held_amount - posting.from_hold
    postings = [posting.posting]
    if complete and held_left > 0:
        assert order.held_asset is not None
        postings.append(ledger.release(order.held_asset, held_left))
        held_left = Decimal(0)
    writes.post(user_id, account.id, postings, order_id=order.id, fill_id=recorded.id)

    average = (
        fill.price
        if order.average_price is None
        else (order.average_price * order.filled_quantity + fill.price * fill.quantity) / filled
    )
    fees = dict(order.fees)
    fees[fill.fee_currency] = fees.get(fill.fee_currency, Decimal(0)) + fill.fee
    action = OrderAction.FILL if complete else OrderAction.PARTIAL_FILL
    status = order_transition(order.status, action)
    updated = writes.order(
        user_id,
        order_rows.stamped(
            order.model_copy(
                update={
                    "status": status,
                    "filled_quantity": filled,
                    "average_price": average,
                    "fees": fees,
                    "held_amount": held_left,
                    "position_id": order.position_id if moved is None else moved.id,
                }
            )
        ),
    )
    writes.event(
        user_id,
        order_rows.NewEvent(
            order.id,
            action.value,
            order.status,
            status,
            {
                "trade_id": fill.trade_id,
                "quantity": decimal_text(fill.quantity),
                "price": decimal_text(fill.price),
                "fee": decimal_text(fill.fee),
                "fee_currency": fill.fee_currency,
                "liquidity": fill.liquidity,
                "executed_at": fill.executed_at,
            },
        ),
    )
    verb = "Bought" if order.side is OrderSide.BUY else "Sold"
    writes.note(
        user_id,
        level=ActivityLevel.SUCCESS,
        message=(
            f"{verb} {fill.quantity} {order.symbol} at {fill.price} ({account.mode.value} {account.exchange})"
            + ("" if complete else f", {filled} of {order.quantity}")
        ),
        bot_id=order.bot_id,
        data={
            "order_id": str(order.id),
            "client_order_id": order.client_order_id,
            "quantity": decimal_text(fill.quantity),
            "price": decimal_text(fill.price),
            "fee": decimal_text(fill.fee),
            "fee_currency": fill.fee_currency,
        },
    )
    event = writes.publish(user_id, order_event(EventType.ORDER_FILLED, account, updated, user_id))
    return Booked(updated, position=moved, events=(event,))


def _shortfalls(
    order: Order,
    rules: MarketRules,
    fill: order_rows.NewFill,
    from_available: Decimal,
    available: Available,
) -> list[tuple[str, Decimal]]:
    """What the available books lack for this fill, per asset (empty: it is covered)."""
    needs: dict[str, Decimal] = {}
    paid_in = rules.quote if order.side is OrderSide.BUY else rules.base
    if from_available > 0:
        needs[paid_in] = from_available
    fee_from_available = not (order.side is OrderSide.BUY and fill.fee_currency == rules.quote)
    received = rules.base if order.side is OrderSide.BUY else rules.quote
    if fill.fee > 0 and fee_from_available and fill.fee_currency != received:
        needs[fill.fee_currency] = needs.get(fill.fee_currency, Decimal(0)) + fill.fee
    return [
        (asset, amount - available(asset)) for asset, amount in needs.items() if available(asset) < amount
    ]


def _move_position(
    writes: Writes,
    user_id: UUID,
    account: Account,
    order: Order,
    fill: order_rows.NewFill,
    fee_quote: Decimal,
    current: Position | None,
    protection: ProtectionState | None,
) -> Position | None:
    holding = None if current is None else position_rows.holding_of(current)
    quantity = fill.quantity
    if order.side is OrderSide.SELL:
        held = Decimal(0) if holding is None else holding.quantity
        if quantity > held:
            # Only an exchange can get here (admission refuses such sells): book what the
            # position had and report the drift; the ledger still records the whole sale.
            logger.warning(
                "sell beyond the tracked position",
                extra={"order_id": str(order.id), "sold": str(quantity), "position": str(held)},
            )
            quantity = held
        if quantity == 0:
            return current
    moved = apply_fill(holding, order.side, quantity, fill.price, fee_quote)
    if current is None:
        return writes.position(
            user_id,
            position_rows.opened_position(
                account_id=account.id,
                bot_id=order.bot_id,
                exchange=order.exchange,
                symbol=order.symbol,
                holding=moved,
                protection=protection,
            ),
            new=True,
        )
    reason = "sold" if order.bot_id is None else (order.intent.get("reason") or "exit")
    return writes.position(
        user_id, position_rows.moved_position(current, moved, close_reason=str(reason)[:200])
    )


def _describe(order: Order, account: Account) -> str:
    side = order.side.value.capitalize()
    return f"{side} {order.type.value} {order.quantity} {order.symbol} ({account.mode.value})"
