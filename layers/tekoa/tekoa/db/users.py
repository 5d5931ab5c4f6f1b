"""Repository of accounts. Sign-in look-ups run as the service role (no user is known yet)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg

from tekoa.auth.models import User, UserCredentials
from tekoa.errors import Conflict


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"


def _user(row: tuple[Any, ...]) -> User:
    return User(id=row[0], email=row[1], display_name=row[2], created_at=row[3])


def insert_user(
    conn: psycopg.Connection[Any], email: str, password_hash: str, display_name: str | None
) -> User:
    """Create an account; EmailTaken when the (case-insensitive) email is registered."""
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO users (email, password_hash, display_name) VALUES (%s, %s, %s)"
                " RETURNING id, email, display_name, created_at",
                (email, password_hash, display_name),
            ).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise EmailTaken("an account with this email already exists", field="email") from exc
    assert row is not None
    return _user(row)


def find_credentials_by_email(conn: psycopg.Connection[Any], email: str) -> UserCredentials | None:
    """The account registered under `email` (case-insensitive) with its password hash."""
    row = conn.execute(
        "SELECT id, email, display_name, created_at, password_hash, disabled_at IS NOT NULL FROM users"
        " WHERE lower(email) = lower(%s)",
        (email,),
    ).fetchone()
    if row is None:
        return None
    return UserCredentials(user=_user(row[:4]), password_hash=row[4], disabled=row[5])


def get_user(conn: psycopg.Connection[Any], user_id: UUID) -> User | None:
    """An enabled account by id (None when unknown or disabled)."""
    row = conn.execute(
        "SELECT id, email, display_name, created_at FROM users WHERE id = %s AND disabled_at IS NULL",
        (user_id,),
    ).fetchone()
    return _user(row) if row else None


def is_user_active(conn: psycopg.Connection[Any], user_id: UUID) -> bool:
    """True when the account exists and is not disabled."""
    row = conn.execute("SELECT 1 FROM users WHERE id = %s AND disabled_at IS NULL", (user_id,)).fetchone()
    return row is not None


def update_password_hash(conn: psycopg.Connection[Any], user_id: UUID, password_hash: str) -> None:
    """Store a new hash of the same password (after the hashing parameters changed)."""
    conn.execute(
        "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s", (password_hash, user_id)
    )
