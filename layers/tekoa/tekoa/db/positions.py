"""Positions (open and closed) and the round trips they make."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tekoa.db import bulk
from tekoa.domain.execution import Position
from tekoa.domain.trading import ProtectionState
from tekoa.execution.positions import Holding

_COLUMNS = sql.SQL(
    "id, account_id, bot_id, exchange, symbol, quantity, average_entry, entry_quantity, exit_quantity,"
    " exit_value, realized_pnl, fees, protection, opened_at, closed_at, close_reason, updated_at"
)


def holding_of(position: Position) -> Holding:
    return Holding(
        quantity=position.quantity,
        average_entry=position.average_entry,
        entry_quantity=position.entry_quantity,
        exit_quantity=position.exit_quantity,
        exit_value=position.exit_value,
        realized_pnl=position.realized_pnl,
        fees=position.fees,
    )


def open_position(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    account_id: UUID,
    bot_id: UUID | None,
    symbol: str,
    *,
    for_update: bool = False,
) -> Position | None:
    """The open position of (account, bot or manual, symbol), if any."""
    lock = sql.SQL(" FOR UPDATE" if for_update else "")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM positions WHERE user_id = %s AND account_id = %s AND bot_id IS NOT DISTINCT"
                " FROM %s"
                " AND symbol = %s AND closed_at IS NULL{}"
            ).format(_COLUMNS, lock),
            (user_id, account_id, bot_id, symbol),
        )
        row = cur.fetchone()
    return None if row is None else Position.model_validate(row)


def opened_position(
    *,
    account_id: UUID,
    bot_id: UUID | None,
    exchange: str,
    symbol: str,
    holding: Holding,
    protection: ProtectionState | None,
) -> Position:
    """A new position as it will be stored (its id made here)."""
    now = datetime.now(UTC)
    return Position(
        id=uuid4(),
        account_id=account_id,
        bot_id=bot_id,
        exchange=exchange,
        symbol=symbol,
        quantity=holding.quantity,
        average_entry=holding.average_entry,
        entry_quantity=holding.entry_quantity,
        exit_quantity=holding.exit_quantity,
        exit_value=holding.exit_value,
        realized_pnl=holding.realized_pnl,
        fees=holding.fees,
        protection=protection,
        opened_at=now,
        closed_at=None,
        close_reason=None,
        updated_at=now,
    )


def moved_position(position: Position, holding: Holding, *, close_reason: str | None) -> Position:
    """A position after a fill; a flat one is closed (with `close_reason`)."""
    now = datetime.now(UTC)
    flat = holding.quantity == 0
    return position.model_copy(
        update={
            "quantity": holding.quantity,
            "average_entry": holding.average_entry,
            "entry_quantity": holding.entry_quantity,
            "exit_quantity": holding.exit_quantity,
            "exit_value": holding.exit_value,
            "realized_pnl": holding.realized_pnl,
            "fees": holding.fees,
            "closed_at": now if flat else None,
            "close_reason": close_reason if flat else None,
            "updated_at": now,
        }
    )


_FIELDS = (
    ("quantity", "numeric"),
    ("average_entry", "numeric"),
    ("entry_quantity", "numeric"),
    ("exit_quantity", "numeric"),
    ("exit_value", "numeric"),
    ("realized_pnl", "numeric"),
    ("fees", "numeric"),
    ("protection", "jsonb"),
    ("closed_at", "timestamptz"),
    ("close_reason", "text"),
    ("updated_at", "timestamptz"),
)


def _row(position: Position) -> list[Any]:
    protection = None if position.protection is None else Jsonb(position.protection.model_dump(mode="json"))
    return [
        position.quantity,
        position.average_entry,
        position.entry_quantity,
        position.exit_quantity,
        position.exit_value,
        position.realized_pnl,
        position.fees,
        protection,
        position.closed_at,
        position.close_reason,
        position.updated_at,
    ]


_IDENTITY = (
    ("id", "uuid"),
    ("user_id", "uuid"),
    ("account_id", "uuid"),
    ("bot_id", "uuid"),
    ("exchange", "text"),
    ("symbol", "text"),
    ("opened_at", "timestamptz"),
)


def insert_positions(conn: psycopg.Connection[Any], positions: Sequence[tuple[UUID, Position]]) -> None:
    """Store new positions (owner, position) in one statement, returning nothing."""
    bulk.insert_rows(
        conn,
        "positions",
        [*_IDENTITY, *_FIELDS],
        [
            (p.id, user_id, p.account_id, p.bot_id, p.exchange, p.symbol, p.opened_at, *_row(p))
            for user_id, p in positions
        ],
    )


def update_positions(conn: psycopg.Connection[Any], positions: Sequence[tuple[UUID, Position]]) -> None:
    """Write positions' numbers and state in one statement."""
    bulk.update_rows(
        conn,
        "positions",
        (("id", "uuid"), ("user_id", "uuid")),
        _FIELDS,
        [(p.id, user_id, *_row(p)) for user_id, p in positions],
    )


def close_all_at_reset(conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID) -> int:
    """Close every open position of the account without a trade (a paper reset wipes holdings)."""
    return conn.execute(
        "UPDATE positions SET quantity = 0, closed_at = now(), close_reason = 'account reset', updated_at ="
        " now()"
        " WHERE user_id = %s AND account_id = %s AND closed_at IS NULL",
        (user_id, account_id),
    ).rowcount


def get_position(conn: psycopg.Connection[Any], user_id: UUID, position_id: UUID) -> Position | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM positions WHERE user_id = %s AND id = %s").format(_COLUMNS),
            (user_id, position_id),
        )
        row = cur.fetchone()
    return None if row is None else Position.model_validate(row)


def list_positions(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    is_open: bool | None,
    bot_id: UUID | None,
    account_id: UUID | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Position]:
    """The owner's positions, newest opened first."""
    after_time, after_id = after if after is not None else (None, None)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM positions WHERE user_id = %(user_id)s"
                " AND (%(is_open)s::boolean IS NULL OR (closed_at IS NULL) = %(is_open)s)"
                " AND (%(bot_id)s::uuid IS NULL OR bot_id = %(bot_id)s)"
                " AND (%(account_id)s::uuid IS NULL OR account_id ="
                " %(account_id)s)"
                " AND (%(after_time)s::timestamptz IS NULL OR (opened_at, id) < (%(after_time)s,"
                " %(after_id)s))"
                " ORDER BY opened_at DESC, id DESC LIMIT %(limit)s"
            ).format(_COLUMNS),
            {
                "user_id": user_id,
                "is_open": is_open,
                "bot_id": bot_id,
                "account_id": account_id,
                "after_time": after_time,
                "after_id": after_id,
                "limit": limit,
            },
        )
        return [Position.model_validate(row) for row in cur.fetchall()]


def list_round_trips(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    bot_id: UUID | None,
    account_id: UUID | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Position]:
    """Closed positions that traded (not those wiped by a reset), newest close first."""
    after_time, after_id = after if after is not None else (None, None)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM positions WHERE user_id = %(user_id)s AND closed_at IS NOT NULL"
                " AND exit_quantity > 0"
                " AND (%(bot_id)s::uuid IS NULL OR bot_id ="
                " %(bot_id)s)"
                " AND (%(account_id)s::uuid IS NULL OR account_id ="
                " %(account_id)s)"
                " AND (%(after_time)s::timestamptz IS NULL"
                " OR (closed_at, id) < (%(after_time)s, %(after_id)s))"
                " ORDER BY closed_at DESC, id DESC LIMIT %(limit)s"
            ).format(_COLUMNS),
            {
                "user_id": user_id,
                "bot_id": bot_id,
                "account_id": account_id,
                "after_time": after_time,
                "after_id": after_id,
                "limit": limit,
            },
        )
        return [Position.model_validate(row) for row in cur.fetchall()]


def round_trip_results(
    conn: psycopg.Connection[Any], user_id: UUID, *, bot_id: UUID | None, since: datetime | None
) -> list[tuple[UUID | None, datetime, Decimal, Decimal]]:
    """(bot_id, closed_at, realized_pnl, fees) of every round trip, oldest close first (for stats)."""
    rows = conn.execute(
        "SELECT bot_id, closed_at, realized_pnl, fees FROM positions WHERE user_id = %(user_id)s"
        " AND closed_at IS NOT NULL AND exit_quantity > 0"
        " AND (%(bot_id)s::uuid IS NULL OR bot_id = %(bot_id)s)"
        " AND (%(since)s::timestamptz IS NULL OR closed_at >= %(since)s)"
        " ORDER BY closed_at, id",
        {"user_id": user_id, "bot_id": bot_id, "since": since},
    ).fetchall()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def latest_position(
    conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID, symbol: str, bot_id: UUID | None
) -> Position | None:
    """The owner's most recently moved position of (account, symbol, bot or manual): the one a
    fill just changed, open or just closed."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM positions WHERE user_id = %s AND account_id = %s AND symbol = %s"
                " AND bot_id IS NOT DISTINCT FROM %s ORDER BY updated_at DESC, opened_at DESC LIMIT 1"
            ).format(_COLUMNS),
            (user_id, account_id, symbol, bot_id),
        )
        row = cur.fetchone()
    return None if row is None else Position.model_validate(row)
