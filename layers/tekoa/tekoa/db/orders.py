"""Orders, their append-only events and their fills."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tekoa.domain.execution import FINAL_STATUSES, Fill, Order, OrderEvent, OrderStatus
from tekoa.domain.orders import OrderSide, OrderType

_COLUMNS = sql.SQL(
    "id, account_id, bot_id, position_id, client_order_id, exchange, symbol, side, type, quantity,"
    " limit_price, stop_price, reduce_only, status, filled_quantity, average_price, fees, held_asset,"
    " held_amount, exchange_order_id, reason, reject_code, intent, not_found_count, created_at, updated_at,"
    " submitted_at, closed_at"
)
_FINAL = [status.value for status in FINAL_STATUSES]


@dataclass(frozen=True, slots=True)
class NewOrder:
    """What an order is when it is claimed."""

    account_id: UUID
    bot_id: UUID | None
    client_order_id: str
    exchange: str
    symbol: str
    side: OrderSide
    type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    reduce_only: bool
    intent: dict[str, Any]


def _order(row: dict[str, Any]) -> Order:
    row["fees"] = {currency: Decimal(amount) for currency, amount in row["fees"].items()}
    return Order.model_validate(row)


def claim_order(conn: psycopg.Connection[Any], user_id: UUID, new: NewOrder) -> tuple[Order, bool]:
    """Insert the order as `new`, or find the one already claimed under its client id.

    Returns (order, claimed): `claimed` is False for a duplicate delivery. The existing order
    comes back locked, like the new one, for the rest of the caller's transaction.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "INSERT INTO orders (user_id, account_id, bot_id, client_order_id, exchange, symbol, side, type,"
                " quantity, limit_price, stop_price, reduce_only, intent) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                " %s, %s, %s, %s, %s, %s) ON CONFLICT (account_id, client_order_id) DO NOTHING RETURNING {}"
            ).format(_COLUMNS),
            (
                user_id,
                new.account_id,
                new.bot_id,
                new.client_order_id,
                new.exchange,
                new.symbol,
                new.side.value,
                new.type.value,
                new.quantity,
                new.limit_price,
                new.stop_price,
                new.reduce_only,
                Jsonb(new.intent),
            ),
        )
        row = cur.fetchone()
        if row is not None:
            return _order(row), True
    existing = get_order_by_client_id(conn, user_id, new.account_id, new.client_order_id, for_update=True)
    assert existing is not None, "a conflicting order must exist"
    return existing, False


def get_order(
    conn: psycopg.Connection[Any], user_id: UUID, order_id: UUID, *, for_update: bool = False
) -> Order | None:
    lock = sql.SQL(" FOR UPDATE" if for_update else "")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM orders WHERE user_id = %s AND id = %s{}").format(_COLUMNS, lock),
            (user_id, order_id),
        )
        row = cur.fetchone()
    return None if row is None else _order(row)


def get_order_by_client_id(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    account_id: UUID,
    client_order_id: str,
    *,
    for_update: bool = False,
) -> Order | None:
    lock = sql.SQL(" FOR UPDATE" if for_update else "")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM orders WHERE user_id = %s AND account_id = %s AND client_order_id = %s{}"
            ).format(_COLUMNS, lock),
            (user_id, account_id, client_order_id),
        )
        row = cur.fetchone()
    return None if row is None else _order(row)


def save_order(conn: psycopg.Connection[Any], user_id: UUID, order: Order) -> Order:
    """Write an order's changing fields (the caller holds its lock and checked the transition).

    `submitted_at` is stamped on the first move to submitted, `closed_at` on reaching a final status.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "UPDATE orders SET status = %(status)s, filled_quantity = %(filled_quantity)s,"
                " average_price = %(average_price)s, fees = %(fees)s, held_asset = %(held_asset)s,"
                " held_amount = %(held_amount)s, exchange_order_id = %(exchange_order_id)s,"
                " reason = %(reason)s, reject_code = %(reject_code)s, position_id = %(position_id)s,"
                " not_found_count = %(not_found_count)s, updated_at = now(),"
                " submitted_at = coalesce(submitted_at, CASE WHEN %(status)s = 'submitted' THEN now() END),"
                " closed_at = CASE WHEN %(status)s = ANY(%(final)s) THEN coalesce(closed_at, now()) END"
                " WHERE user_id = %(user_id)s AND id = %(id)s RETURNING {}"
            ).format(_COLUMNS),
            {
                "status": order.status.value,
                "filled_quantity": order.filled_quantity,
                "average_price": order.average_price,
                "fees": Jsonb({currency: str(amount) for currency, amount in order.fees.items()}),
                "held_asset": order.held_asset,
                "held_amount": order.held_amount,
                "exchange_order_id": order.exchange_order_id,
                "reason": order.reason,
                "reject_code": order.reject_code.value if order.reject_code else None,
                "position_id": order.position_id,
                "not_found_count": order.not_found_count,
                "final": _FINAL,
                "user_id": user_id,
                "id": order.id,
            },
        )
        row = cur.fetchone()
    assert row is not None, "the order was locked by the caller"
    return _order(row)


@dataclass(frozen=True, slots=True)
class NewEvent:
    order_id: UUID
    kind: str
    from_status: OrderStatus | None
    to_status: OrderStatus
    detail: dict[str, Any]


def insert_events(conn: psycopg.Connection[Any], user_id: UUID, events: Sequence[NewEvent]) -> None:
    """Append events to their orders' histories, in order, in one statement."""
    if not events:
        return
    placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(events))
    conn.execute(
        f"INSERT INTO order_events (user_id, order_id, kind, from_status, to_status, detail) VALUES {placeholders}",  # noqa: S608
        [
            value
            for event in events
            for value in (
                user_id,
                event.order_id,
                event.kind,
                event.from_status.value if event.from_status else None,
                event.to_status.value,
                Jsonb(event.detail),
            )
        ],
    )


def list_events(conn: psycopg.Connection[Any], user_id: UUID, order_id: UUID) -> list[OrderEvent]:
    """An order's history, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT id, order_id, kind, from_status, to_status, detail, at FROM order_events"
            " WHERE user_id = %s AND order_id = %s ORDER BY id",
            (user_id, order_id),
        )
        return [OrderEvent.model_validate(row) for row in cur.fetchall()]


@dataclass(frozen=True, slots=True)
class NewFill:
    trade_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: str
    executed_at: int


_FILL_COLUMNS = sql.SQL(
    "id, order_id, trade_id, quantity, price, fee, fee_currency, liquidity, executed_at, created_at"
)


def insert_fill(conn: psycopg.Connection[Any], user_id: UUID, order_id: UUID, fill: NewFill) -> Fill | None:
    """Record one execution; None when this trade was already recorded for the order."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "INSERT INTO fills (user_id, order_id, trade_id, quantity, price, fee, fee_currency, liquidity,"
                " executed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (order_id, trade_id) DO NOTHING RETURNING {}"
            ).format(_FILL_COLUMNS),
            (
                user_id,
                order_id,
                fill.trade_id,
                fill.quantity,
                fill.price,
                fill.fee,
                fill.fee_currency,
                fill.liquidity,
                fill.executed_at,
            ),
        )
        row = cur.fetchone()
    return None if row is None else Fill.model_validate(row)


def list_fills(conn: psycopg.Connection[Any], user_id: UUID, order_id: UUID) -> list[Fill]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM fills WHERE user_id = %s AND order_id = %s ORDER BY executed_at, id"
            ).format(_FILL_COLUMNS),
            (user_id, order_id),
        )
        return [Fill.model_validate(row) for row in cur.fetchall()]


def list_orders(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    statuses: Collection[OrderStatus] | None,
    bot_id: UUID | None,
    account_id: UUID | None,
    symbol: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Order]:
    """The owner's orders, newest first, filtered, after the (created_at, id) cursor."""
    after_time, after_id = after if after is not None else (None, None)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM orders WHERE user_id = %(user_id)s"
                " AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s))"
                " AND (%(bot_id)s::uuid IS NULL OR bot_id = %(bot_id)s)"
                " AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)"
                " AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)"
                " AND (%(after_time)s::timestamptz IS NULL OR (created_at, id) < (%(after_time)s, %(after_id)s))"
                " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
            ).format(_COLUMNS),
            {
                "user_id": user_id,
                "statuses": None if statuses is None else [s.value for s in statuses],
                "bot_id": bot_id,
                "account_id": account_id,
                "symbol": symbol,
                "after_time": after_time,
                "after_id": after_id,
                "limit": limit,
            },
        )
        return [_order(row) for row in cur.fetchall()]


def working_orders(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    account_id: UUID,
    *,
    symbol: str | None = None,
    bot_id: UUID | None = None,
    bot_filter: bool = False,
) -> list[Order]:
    """The account's orders that are not final, oldest first; `bot_filter` narrows to `bot_id`
    (None: manual orders)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM orders WHERE user_id = %(user_id)s AND account_id = %(account_id)s"
                " AND status IN ('new', 'submitted', 'open', 'partially_filled')"
                " AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)"
                " AND (NOT %(bot_filter)s OR bot_id IS NOT DISTINCT FROM %(bot_id)s)"
                " ORDER BY created_at, id"
            ).format(_COLUMNS),
            {
                "user_id": user_id,
                "account_id": account_id,
                "symbol": symbol,
                "bot_id": bot_id,
                "bot_filter": bot_filter,
            },
        )
        return [_order(row) for row in cur.fetchall()]


@dataclass(frozen=True, slots=True)
class OrderRef:
    """Where to find an order: enough for the service role to act as its owner."""

    user_id: UUID
    account_id: UUID
    order_id: UUID
    client_order_id: str
    exchange: str
    symbol: str
    mode: str
    status: OrderStatus
    side: OrderSide
    type: OrderType
    limit_price: Decimal | None
    stop_price: Decimal | None
    created_at: datetime


def find_working(
    conn: psycopg.Connection[Any],
    *,
    statuses: Collection[OrderStatus],
    mode: str | None = None,
    exchange: str | None = None,
    older_than_s: float = 0.0,
    limit: int = 1000,
) -> list[OrderRef]:
    """Orders across all users in `statuses` (service role: matching, reconciliation)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT o.user_id, o.account_id, o.id AS order_id, o.client_order_id, o.exchange, o.symbol, a.mode,"
            " o.status, o.side, o.type, o.limit_price, o.stop_price, o.created_at"
            " FROM orders o JOIN accounts a ON a.id = o.account_id"
            " WHERE o.status = ANY(%(statuses)s) AND (%(mode)s::text IS NULL OR a.mode = %(mode)s)"
            " AND (%(exchange)s::text IS NULL OR o.exchange = %(exchange)s)"
            " AND o.updated_at <= now() - make_interval(secs => %(older)s)"
            " ORDER BY o.created_at LIMIT %(limit)s",
            {
                "statuses": [s.value for s in statuses],
                "mode": mode,
                "exchange": exchange,
                "older": older_than_s,
                "limit": limit,
            },
        )
        return [OrderRef(**row) for row in cur.fetchall()]
