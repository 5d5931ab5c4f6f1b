"""Repository of sign-in and sign-up attempts, for throttling (service role: no user is known yet).

An attempt is recorded *before* the password is hashed, under a transaction-scoped advisory
lock per account and per address, so concurrent attempts are counted one after another and
none slips past the limit while another is still hashing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

# Advisory-lock classes (the first key of the two-key form): locks of different kinds never collide.
_EMAIL_LOCK, _ADDRESS_LOCK, _SIGNUP_LOCK = 7101, 7102, 7103


def lock_login_counters(conn: psycopg.Connection[Any], email: str, client_address: str) -> None:
    """Serialise sign-ins of `email` and from `client_address` until the transaction ends.

    Always the account first, then the address: every caller takes them in that order, so
    two sign-ins cannot wait on each other.
    """
    conn.execute(
        "SELECT pg_advisory_xact_lock(%s, hashtext(%s)), pg_advisory_xact_lock(%s, hashtext(%s))",
        (_EMAIL_LOCK, email, _ADDRESS_LOCK, client_address),
    )


def record_failed_login(conn: psycopg.Connection[Any], email: str, client_address: str) -> None:
    """Count one attempt against the email and the client address (a failure until cleared)."""
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


def lock_signup_counter(conn: psycopg.Connection[Any], client_address: str) -> None:
    """Serialise sign-ups from `client_address` until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_SIGNUP_LOCK, client_address))


def record_signup(conn: psycopg.Connection[Any], client_address: str) -> None:
    """Count one sign-up from `client_address`."""
    conn.execute("INSERT INTO signup_attempts (client_address) VALUES (%s)", (client_address,))


def nth_newest_signup(
    conn: psycopg.Connection[Any], client_address: str, since: datetime, n: int
) -> datetime | None:
    """When the n-th newest sign-up from `client_address` after `since` happened (None: fewer)."""
    row = conn.execute(
        "SELECT attempted_at FROM signup_attempts WHERE client_address = %s AND attempted_at > %s"
        " ORDER BY attempted_at DESC OFFSET %s LIMIT 1",
        (client_address, since, n - 1),
    ).fetchone()
    return row[0] if row else None


def purge_signups(conn: psycopg.Connection[Any], before: datetime) -> int:
    """Delete sign-ups older than `before` (they no longer count); returns how many."""
    return conn.execute("DELETE FROM signup_attempts WHERE attempted_at < %s", (before,)).rowcount
