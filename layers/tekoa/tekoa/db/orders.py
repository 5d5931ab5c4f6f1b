"""Orders, their append-only events and their fills."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tekoa.db import bulk
from tekoa.domain.execution import FINAL_STATUSES, Fill, Order, OrderEvent, OrderStatus
from tekoa.domain.orders import OrderSide, OrderType

_COLUMNS = sql.SQL(
    "id, account_id, bot_id, position_id, client_order_id, exchange, symbol, side, type, quantity,"
    " limit_price, stop_price, reduce_only, status, filled_quantity, average_price, fees, held_asset,"
    " held_amount, exchange_order_id, reason, reject_code, intent, not_found_count, created_at, updated_at,"
    " submitted_at, closed_at"
)


def order_from_row(row: dict[str, Any]) -> Order:
    """An order from a row of its columns (fees are stored as decimal strings)."""
    row["fees"] = {currency: Decimal(amount) for currency, amount in row["fees"].items()}
    return Order.model_validate(row)


def new_order(
    account_id: UUID,
    *,
    bot_id: UUID | None,
    client_order_id: str,
    exchange: str,
    symbol: str,
    side: OrderSide,
    type: OrderType,
    quantity: Decimal,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    reduce_only: bool,
    intent: dict[str, Any],
) -> Order:
    """A claimed order as it will be stored (status `new`, nothing held yet)."""
    now = datetime.now(UTC)
    return Order(
        id=uuid4(),
        account_id=account_id,
        bot_id=bot_id,
        position_id=None,
        client_order_id=client_order_id,
        exchange=exchange,
        symbol=symbol,
        side=side,
        type=type,
        quantity=quantity,
        limit_price=limit_price,
        stop_price=stop_price,
        reduce_only=reduce_only,
        status=OrderStatus.NEW,
        filled_quantity=Decimal(0),
        average_price=None,
        fees={},
        held_asset=None,
        held_amount=Decimal(0),
        exchange_order_id=None,
        reason=None,
        reject_code=None,
        intent=intent,
        not_found_count=0,
        created_at=now,
        updated_at=now,
        submitted_at=None,
        closed_at=None,
    )


_INSERT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "uuid"),
    ("user_id", "uuid"),
    ("account_id", "uuid"),
    ("bot_id", "uuid"),
    ("position_id", "uuid"),
    ("client_order_id", "text"),
    ("exchange", "text"),
    ("symbol", "text"),
    ("side", "text"),
    ("type", "text"),
    ("quantity", "numeric"),
    ("limit_price", "numeric"),
    ("stop_price", "numeric"),
    ("reduce_only", "boolean"),
    ("status", "text"),
    ("filled_quantity", "numeric"),
    ("average_price", "numeric"),
    ("fees", "jsonb"),
    ("held_asset", "text"),
    ("held_amount", "numeric"),
    ("exchange_order_id", "text"),
    ("reason", "text"),
    ("reject_code", "text"),
    ("intent", "jsonb"),
    ("not_found_count", "int"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("submitted_at", "timestamptz"),
    ("closed_at", "timestamptz"),
)
_KEYS = (("id", "uuid"), ("user_id", "uuid"))
# What a booking changes; the rest is fixed when the order is claimed.
_UPDATE_COLUMNS = tuple(
    column
    for column in _INSERT_COLUMNS
    if column[0]
    in {
        "status",
        "filled_quantity",
        "average_price",
        "fees",
        "held_asset",
        "held_amount",
        "exchange_order_id",
        "reason",
        "reject_code",
        "position_id",
        "not_found_count",
        "updated_at",
        "submitted_at",
        "closed_at",
    }
)


def _values(user_id: UUID, order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "user_id": user_id,
        "account_id": order.account_id,
        "bot_id": order.bot_id,
        "position_id": order.position_id,
        "client_order_id": order.client_order_id,
        "exchange": order.exchange,
        "symbol": order.symbol,
        "side": order.side.value,
        "type": order.type.value,
        "quantity": order.quantity,
        "limit_price": order.limit_price,
        "stop_price": order.stop_price,
        "reduce_only": order.reduce_only,
        "status": order.status.value,
        "filled_quantity": order.filled_quantity,
        "average_price": order.average_price,
        "fees": Jsonb({currency: str(amount) for currency, amount in order.fees.items()}),
        "held_asset": order.held_asset,
        "held_amount": order.held_amount,
        "exchange_order_id": order.exchange_order_id,
        "reason": order.reason,
        "reject_code": order.reject_code.value if order.reject_code else None,
        "intent": Jsonb(order.intent),
        "not_found_count": order.not_found_count,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "submitted_at": order.submitted_at,
        "closed_at": order.closed_at,
    }


def stamped(order: Order) -> Order:
    """The order as it will be stored: `updated_at` now, `submitted_at` stamped on the first
    move to submitted, `closed_at` on reaching a final status."""
    now = datetime.now(UTC)
    return order.model_copy(
        update={
            "updated_at": now,
            "submitted_at": order.submitted_at or (now if order.status is OrderStatus.SUBMITTED else None),
            "closed_at": (order.closed_at or now) if order.status in FINAL_STATUSES else None,
        }
    )


def insert_orders(conn: psycopg.Connection[Any], orders: Sequence[tuple[UUID, Order]]) -> None:
    """Store claimed orders (owner, order) in one statement, returning nothing.

    The caller holds the accounts' locks and saw no order with these client ids, so the unique
    constraint is only the last line of defence (a violation aborts the transaction).
    """
    rows = [_values(user_id, order) for user_id, order in orders]
    bulk.insert_rows(
        conn, "orders", _INSERT_COLUMNS, [[row[name] for name, _ in _INSERT_COLUMNS] for row in rows]
    )


def update_orders(conn: psycopg.Connection[Any], orders: Sequence[tuple[UUID, Order]]) -> None:
    """Write orders' changing fields (the caller holds their accounts' locks), one statement."""
    rows = [_values(user_id, order) for user_id, order in orders]
    bulk.update_rows(
        conn,
        "orders",
        _KEYS,
        _UPDATE_COLUMNS,
        [[row[name] for name, _ in (*_KEYS, *_UPDATE_COLUMNS)] for row in rows],
    )


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
    return None if row is None else order_from_row(row)


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
    return None if row is None else order_from_row(row)


@dataclass(frozen=True, slots=True)
class NewEvent:
    order_id: UUID
    kind: str
    from_status: OrderStatus | None
    to_status: OrderStatus
    detail: dict[str, Any]


_EVENT_COLUMNS = (
    ("user_id", "uuid"),
    ("order_id", "uuid"),
    ("kind", "text"),
    ("from_status", "text"),
    ("to_status", "text"),
    ("detail", "jsonb"),
)


def insert_events(conn: psycopg.Connection[Any], events: Sequence[tuple[UUID, NewEvent]]) -> None:
    """Append (owner, event) rows to their orders' histories, in order, in one statement."""
    bulk.insert_rows(
        conn,
        "order_events",
        _EVENT_COLUMNS,
        [
            (
                user_id,
                event.order_id,
                event.kind,
                event.from_status.value if event.from_status else None,
                event.to_status.value,
                Jsonb(event.detail),
            )
            for user_id, event in events
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


def recorded_fill(order_id: UUID, fill: NewFill) -> Fill:
    """The fill row an execution becomes (its id made here)."""
    return Fill(
        id=uuid4(),
        order_id=order_id,
        trade_id=fill.trade_id,
        quantity=fill.quantity,
        price=fill.price,
        fee=fill.fee,
        fee_currency=fill.fee_currency,
        liquidity=fill.liquidity,
        executed_at=fill.executed_at,
        created_at=datetime.now(UTC),
    )


_FILL_COLUMNS_TYPED = (
    ("id", "uuid"),
    ("user_id", "uuid"),
    ("order_id", "uuid"),
    ("trade_id", "text"),
    ("quantity", "numeric"),
    ("price", "numeric"),
    ("fee", "numeric"),
    ("fee_currency", "text"),
    ("liquidity", "text"),
    ("executed_at", "bigint"),
    ("created_at", "timestamptz"),
)


def insert_fills(conn: psycopg.Connection[Any], fills: Sequence[tuple[UUID, Fill]]) -> None:
    """Record executions (owner, fill) in one statement. The caller checked each trade is not
    booked yet; the unique (order, trade id) constraint is the last line of defence."""
    bulk.insert_rows(
        conn,
        "fills",
        _FILL_COLUMNS_TYPED,
        [
            (
                f.id,
                user_id,
                f.order_id,
                f.trade_id,
                f.quantity,
                f.price,
                f.fee,
                f.fee_currency,
                f.liquidity,
                f.executed_at,
                f.created_at,
            )
            for user_id, f in fills
        ],
    )


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
                " AND (%(after_time)s::timestamptz IS NULL OR (created_at, id) < (%(after_time)s,"
                " %(after_id)s))"
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
        return [order_from_row(row) for row in cur.fetchall()]


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
        return [order_from_row(row) for row in cur.fetchall()]


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
            "SELECT o.user_id, o.account_id, o.id AS order_id, o.client_order_id, o.exchange, o.symbol,"
            " a.mode,"
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
