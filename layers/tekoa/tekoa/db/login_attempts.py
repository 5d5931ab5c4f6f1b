"""Repository of failed sign-ins, for throttling (service role: written before a user is known)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg


def record_failed_login(conn: psycopg.Connection[Any], email: str, client_address: str) -> None:
    """Count one failed sign-in against the email and the client address."""
    conn.execute(
        "INSERT INTO login_attempts (email, client_address) VALUES (%s, %s)", (email, client_address)
    )


def nth_newest_failure_for_email(
    conn: psycopg.Connection[Any], email: str, since: datetime, n: int
) -> datetime | None:
    """When the n-th newest failure for `email` after `since` happened (None: fewer than n)."""
    row = conn.execute(
        "SELECT attempted_at FROM login_attempts WHERE email = %s AND attempted_at > %s"
        " ORDER BY attempted_at DESC OFFSET %s LIMIT 1",
        (email, since, n - 1),
    ).fetchone()
    return row[0] if row else None


def nth_newest_failure_for_address(
    conn: psycopg.Connection[Any], client_address: str, since: datetime, n: int
) -> datetime | None:
    """When the n-th newest failure from `client_address` after `since` happened (None: fewer)."""
    row = conn.execute(
        "SELECT attempted_at FROM login_attempts WHERE client_address = %s AND attempted_at > %s"
        " ORDER BY attempted_at DESC OFFSET %s LIMIT 1",
        (client_address, since, n - 1),
    ).fetchone()
    return row[0] if row else None


def clear_failed_logins(conn: psycopg.Connection[Any], email: str) -> None:
    """Forget an account's failures after it signed in (the address's failures still count)."""
    conn.execute("DELETE FROM login_attempts WHERE email = %s", (email,))


def purge_login_attempts(conn: psycopg.Connection[Any], before: datetime) -> int:
    """Delete failures older than `before` (they no longer count); returns how many."""
    return conn.execute("DELETE FROM login_attempts WHERE attempted_at < %s", (before,)).rowcount
