"""Repository of accounts. Sign-in look-ups run as the service role (no user is known yet)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg

from tekoa.auth.models import User, UserCredentials
from tekoa.errors import Conflict


class EmailTaken(Conflict):
    code = "EMAIL_TAKEN"


_USER_COLUMNS = "id, email, display_name, created_at"


def _user(row: tuple[Any, ...]) -> User:
    return User(id=row[0], email=row[1], display_name=row[2], created_at=row[3])


def insert_user(
    conn: psycopg.Connection[Any], email: str, password_hash: str, display_name: str | None
) -> User:
    """Create an account (token generation 0); EmailTaken when the (case-insensitive) email is
    registered."""
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
        "SELECT id, email, display_name, created_at, password_hash, disabled_at IS NOT NULL,"
        " token_generation FROM users WHERE lower(email) = lower(%s)",
        (email,),
    ).fetchone()
    if row is None:
        return None
    return UserCredentials(
        user=_user(row[:4]), password_hash=row[4], disabled=row[5], token_generation=row[6]
    )


def token_state(conn: psycopg.Connection[Any], user_id: UUID) -> tuple[User, int, bool] | None:
    """(the account, its token generation, whether it is active); None when it does not exist."""
    row = conn.execute(
        "SELECT id, email, display_name, created_at, token_generation, disabled_at IS NULL FROM users"
        " WHERE id = %s",
        (user_id,),
    ).fetchone()
    return (_user(row[:4]), int(row[4]), bool(row[5])) if row else None


def active_token_generation(conn: psycopg.Connection[Any], user_id: UUID) -> int | None:
    """The token generation of an enabled account; None when it is unknown or disabled."""
    row = conn.execute(
        "SELECT token_generation FROM users WHERE id = %s AND disabled_at IS NULL", (user_id,)
    ).fetchone()
    return int(row[0]) if row else None


def end_token_generation(conn: psycopg.Connection[Any], user_id: UUID) -> int:
    """Raise the account's token generation (every access token issued before dies); return it."""
    row = conn.execute(
        "UPDATE users SET token_generation = token_generation + 1, updated_at = now() WHERE id = %s"
        " RETURNING token_generation",
        (user_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def update_password_hash(conn: psycopg.Connection[Any], user_id: UUID, password_hash: str) -> None:
    """Store a new hash of the same password (after the hashing parameters changed)."""
    conn.execute(
        "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s", (password_hash, user_id)
    )
