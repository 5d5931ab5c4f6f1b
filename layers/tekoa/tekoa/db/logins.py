"""Workload login roles: each process logs in as its own role, not as the schema's owner.

A login role has no privileges of its own (NOINHERIT, owns nothing): it may only switch into
the group roles it is granted (`tekoa_app`, `tekoa_service`), which is what
`tenant_transaction` and `service_transaction` do per transaction. A query outside those
transactions is refused, and a role granted only `tekoa_service` can never act for a user
through `tekoa_app`. Each login has a connection limit, so no single workload can exhaust the
database (or the RDS Proxy's pool).

The deploy declares the logins (infra/workloads.py); the migrations Lambda, running as the
master user, makes the database match: role present, memberships exact, password and limit
as declared. Passwords reach the server only as SCRAM verifiers computed here, so no
statement log ever holds one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tekoa.db.connection import APP_ROLE, SERVICE_ROLE
from tekoa.observability import logger

GROUP_ROLES = frozenset({APP_ROLE, SERVICE_ROLE})
_ROLE_NAME = re.compile(r"^tekoa_[a-z][a-z0-9_]{0,40}$")


class LoginSpec(BaseModel):
    """One workload's login as the deploy declares it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: str = Field(pattern=_ROLE_NAME.pattern)
    secret_arn: str = Field(min_length=1)
    member_of: tuple[str, ...] = Field(min_length=1)
    connection_limit: int = Field(ge=1, le=1000)

    @field_validator("role")
    @classmethod
    def _not_a_group(cls, value: str) -> str:
        if value in GROUP_ROLES:
            raise ValueError(f"{value} is a group role, not a login")
        return value

    @field_validator("member_of")
    @classmethod
    def _known_groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - GROUP_ROLES)
        if unknown:
            raise ValueError(f"unknown group roles {unknown}; use {sorted(GROUP_ROLES)}")
        return value


class LoginSecretMismatch(RuntimeError):
    """A login's secret names another user than the role it is declared for."""


def ensure_login(
    conn: psycopg.Connection[Any],
    *,
    role: str,
    password: str,
    member_of: Sequence[str],
    connection_limit: int,
) -> None:
    """Create or update `role` so that it matches exactly: LOGIN NOINHERIT, this password and limit,
    member of exactly `member_of` (switch-only memberships)."""
    if not _ROLE_NAME.match(role) or role in GROUP_ROLES:
        raise ValueError(f"login role {role!r} must match {_ROLE_NAME.pattern} and not be a group role")
    if not set(member_of) <= GROUP_ROLES:
        raise ValueError(f"login roles may only join {sorted(GROUP_ROLES)}")
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    with conn.transaction():
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None
        conn.execute(
            sql.SQL("{} ROLE {} LOGIN NOINHERIT CONNECTION LIMIT {} PASSWORD {}").format(
                sql.SQL("ALTER" if exists else "CREATE"),
                sql.Identifier(role),
                sql.Literal(connection_limit),
                sql.Literal(verifier),
            )
        )
        current = {
            str(name)
            for (name,) in conn.execute(
                "SELECT g.rolname FROM pg_auth_members m"
                " JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member"
                " WHERE u.rolname = %s",
                (role,),
            )
        }
        for group in sorted(set(member_of)):
            # Switch into, never inherit: outside a tenancy transaction the login can do nothing.
            conn.execute(
                sql.SQL("GRANT {} TO {} WITH INHERIT FALSE, SET TRUE").format(
                    sql.Identifier(group), sql.Identifier(role)
                )
            )
        for group in sorted(current - set(member_of)):
            conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), sql.Identifier(role)))


def provision_logins(
    conninfo: str,
    logins: Sequence[LoginSpec],
    read_secret: Callable[[str], str],
    *,
    connect_timeout_s: int = 10,
) -> list[str]:
    """Make every declared login match its secret and declaration; return the roles provisioned."""
    credentials = []
    for login in logins:
        secret = json.loads(read_secret(login.secret_arn))
        if secret.get("username") != login.role:
            raise LoginSecretMismatch(f"the secret of login {login.role} names another user")
        credentials.append((login, str(secret["password"])))
    with psycopg.connect(
        conninfo, autocommit=True, prepare_threshold=None, connect_timeout=connect_timeout_s
    ) as conn:
        for login, password in credentials:
            ensure_login(
                conn,
                role=login.role,
                password=password,
                member_of=login.member_of,
                connection_limit=login.connection_limit,
            )
            logger.info("login provisioned", extra={"role": login.role, "member_of": login.member_of})
    return [login.role for login in logins]
