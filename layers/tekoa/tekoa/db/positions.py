"""Positions (open and closed) and the round trips they make."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

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
                "SELECT {} FROM positions WHERE user_id = %s AND account_id = %s AND bot_id IS NOT DISTINCT FROM %s"
                " AND symbol = %s AND closed_at IS NULL{}"
            ).format(_COLUMNS, lock),
            (user_id, account_id, bot_id, symbol),
        )
        row = cur.fetchone()
    return None if row is None else Position.model_validate(row)


def insert_position(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    account_id: UUID,
    bot_id: UUID | None,
    exchange: str,
    symbol: str,
    holding: Holding,
    protection: ProtectionState | None,
) -> Position:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "INSERT INTO positions (user_id, account_id, bot_id, exchange, symbol, quantity, average_entry,"
                " entry_quantity, exit_quantity, exit_value, realized_pnl, fees, protection)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {}"
            ).format(_COLUMNS),
            (
                user_id,
                account_id,
                bot_id,
                exchange,
                symbol,
                holding.quantity,
                holding.average_entry,
                holding.entry_quantity,
                holding.exit_quantity,
                holding.exit_value,
                holding.realized_pnl,
                holding.fees,
                None if protection is None else Jsonb(protection.model_dump(mode="json")),
            ),
        )
        row = cur.fetchone()
    assert row is not None
    return Position.model_validate(row)


def save_holding(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    position_id: UUID,
    holding: Holding,
    *,
    close_reason: str | None = None,
) -> Position:
    """Write the position's numbers; a flat position is closed (with `close_reason`)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "UPDATE positions SET quantity = %(quantity)s, average_entry = %(average_entry)s,"
                " entry_quantity = %(entry_quantity)s, exit_quantity = %(exit_quantity)s,"
                " exit_value = %(exit_value)s, realized_pnl = %(realized_pnl)s, fees = %(fees)s,"
                " closed_at = CASE WHEN %(quantity)s = 0 THEN now() END,"
                " close_reason = CASE WHEN %(quantity)s = 0 THEN %(close_reason)s END, updated_at = now()"
                " WHERE user_id = %(user_id)s AND id = %(id)s RETURNING {}"
            ).format(_COLUMNS),
            {
                "quantity": holding.quantity,
                "average_entry": holding.average_entry,
                "entry_quantity": holding.entry_quantity,
                "exit_quantity": holding.exit_quantity,
                "exit_value": holding.exit_value,
                "realized_pnl": holding.realized_pnl,
                "fees": holding.fees,
                "close_reason": close_reason,
                "user_id": user_id,
                "id": position_id,
            },
        )
        row = cur.fetchone()
    assert row is not None
    return Position.model_validate(row)


def close_all_at_reset(conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID) -> int:
    """Close every open position of the account without a trade (a paper reset wipes holdings)."""
    return conn.execute(
        "UPDATE positions SET quantity = 0, closed_at = now(), close_reason = 'account reset', updated_at = now()"
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
                " AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)"
                " AND (%(after_time)s::timestamptz IS NULL OR (opened_at, id) < (%(after_time)s, %(after_id)s))"
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
                " AND (%(bot_id)s::uuid IS NULL OR bot_id = %(bot_id)s)"
                " AND (%(account_id)s::uuid IS NULL OR account_id = %(account_id)s)"
                " AND (%(after_time)s::timestamptz IS NULL OR (closed_at, id) < (%(after_time)s, %(after_id)s))"
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
