"""Trading accounts and the platform's trading state."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from tekoa.domain.bots import TradingMode
from tekoa.domain.execution import Account, TradingState

_COLUMNS = sql.SQL(
    "id, exchange, mode, quote_currency, starting_balance, credential_id, trading_state,"
    " trading_state_reason, resets, created_at, updated_at"
)


def ensure_account(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    exchange: str,
    mode: TradingMode,
    quote_currency: str,
    starting_balance: Decimal | None,
    credential_id: UUID | None,
) -> tuple[Account, bool]:
    """The owner's account for (exchange, mode), created if missing; True when it was created.

    Safe under concurrency: two first orders racing to create it both get the one row.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "INSERT INTO accounts (user_id, exchange, mode, quote_currency, starting_balance,"
                " credential_id)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, exchange, mode) DO NOTHING"
                " RETURNING {}"
            ).format(_COLUMNS),
            (user_id, exchange, mode.value, quote_currency, starting_balance, credential_id),
        )
        row = cur.fetchone()
        if row is not None:
            return Account.model_validate(row), True
        cur.execute(
            sql.SQL("SELECT {} FROM accounts WHERE user_id = %s AND exchange = %s AND mode = %s").format(
                _COLUMNS
            ),
            (user_id, exchange, mode.value),
        )
        row = cur.fetchone()
    assert row is not None
    return Account.model_validate(row), False


def get_account(
    conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID, *, for_update: bool = False
) -> Account | None:
    """The owner's account; `for_update` takes the lock every money movement starts with."""
    lock = sql.SQL(" FOR UPDATE" if for_update else "")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM accounts WHERE user_id = %s AND id = %s{}").format(_COLUMNS, lock),
            (user_id, account_id),
        )
        row = cur.fetchone()
    return None if row is None else Account.model_validate(row)


def find_account(
    conn: psycopg.Connection[Any], user_id: UUID, exchange: str, mode: TradingMode
) -> Account | None:
    """The owner's account for (exchange, mode), if it exists."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM accounts WHERE user_id = %s AND exchange = %s AND mode = %s").format(
                _COLUMNS
            ),
            (user_id, exchange, mode.value),
        )
        row = cur.fetchone()
    return None if row is None else Account.model_validate(row)


def list_accounts(conn: psycopg.Connection[Any], user_id: UUID) -> list[Account]:
    """Every account of the owner, oldest first (a user has a handful)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM accounts WHERE user_id = %s ORDER BY created_at, id").format(_COLUMNS),
            (user_id,),
        )
        return [Account.model_validate(row) for row in cur.fetchall()]


def list_live_accounts(conn: psycopg.Connection[Any]) -> list[tuple[UUID, Account]]:
    """(owner, account) of every live account (service role: reconciliation)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT user_id, {} FROM accounts WHERE mode = 'live' ORDER BY id").format(_COLUMNS)
        )
        return [(row.pop("user_id"), Account.model_validate(row)) for row in cur.fetchall()]


def set_starting_balance(
    conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID, amount: Decimal
) -> Account | None:
    """Change what a paper account's next reset restores."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "UPDATE accounts SET starting_balance = %s, updated_at = now()"
                " WHERE user_id = %s AND id = %s AND mode = 'paper' RETURNING {}"
            ).format(_COLUMNS),
            (amount, user_id, account_id),
        )
        row = cur.fetchone()
    return None if row is None else Account.model_validate(row)


def count_reset(conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID) -> Account:
    """Record that the account was reset (the caller holds its lock)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "UPDATE accounts SET resets = resets + 1, updated_at = now() WHERE user_id = %s AND id = %s"
                " RETURNING {}"
            ).format(_COLUMNS),
            (user_id, account_id),
        )
        row = cur.fetchone()
    assert row is not None
    return Account.model_validate(row)


def set_trading_state(
    conn: psycopg.Connection[Any], user_id: UUID, account_id: UUID, state: TradingState, reason: str | None
) -> Account | None:
    """Set an account's trading state (the risk manager's switch)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL(
                "UPDATE accounts SET trading_state = %s, trading_state_reason = %s, updated_at = now()"
                " WHERE user_id = %s AND id = %s RETURNING {}"
            ).format(_COLUMNS),
            (state.value, reason, user_id, account_id),
        )
        row = cur.fetchone()
    return None if row is None else Account.model_validate(row)


def platform_trading_state(conn: psycopg.Connection[Any]) -> tuple[TradingState, str | None]:
    """The operators' switch; a missing row reads as halted (fail closed)."""
    row = conn.execute("SELECT state, reason FROM platform_trading_state").fetchone()
    if row is None:
        return TradingState.HALTED, "platform trading state is missing"
    return TradingState(row[0]), row[1]


def set_platform_trading_state(
    conn: psycopg.Connection[Any], state: TradingState, reason: str | None
) -> None:
    """Halt, reduce or resume trading for everyone (service role)."""
    conn.execute(
        "UPDATE platform_trading_state SET state = %s, reason = %s, changed_at = now()", (state.value, reason)
    )
