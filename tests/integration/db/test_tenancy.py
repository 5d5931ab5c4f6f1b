"""Row-level security: the application role sees only the acting user's rows, even when a
query forgets its WHERE clause. Every tenant table must follow the pattern."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tekoa.db.connection import service_transaction, tenant_transaction


def _make_user(conn: psycopg.Connection, email: str) -> uuid.UUID:
    with service_transaction(conn):
        row = conn.execute(
            "INSERT INTO users (email, password_hash) VALUES (%s, 'x') RETURNING id", (email,)
        ).fetchone()
        assert row is not None
        user_id: uuid.UUID = row[0]
        conn.execute(
            "INSERT INTO audit_log (user_id, action, target_type) VALUES (%s, 'user.registered', 'user')",
            (user_id,),
        )
    return user_id


@pytest.fixture
def two_users(database_url: str) -> tuple[psycopg.Connection, uuid.UUID, uuid.UUID]:
    conn = psycopg.connect(database_url, autocommit=True)
    alice = _make_user(conn, "alice@example.com")
    bob = _make_user(conn, "bob@example.com")
    return conn, alice, bob


def test_an_unfiltered_select_returns_only_the_acting_users_rows(two_users) -> None:
    conn, alice, _ = two_users

    with tenant_transaction(conn, alice):
        users = conn.execute("SELECT id FROM users").fetchall()
        audit = conn.execute("SELECT user_id FROM audit_log").fetchall()

    assert users == [(alice,)]
    assert audit == [(alice,)]


def test_another_users_rows_cannot_be_changed(two_users) -> None:
    conn, alice, bob = two_users

    with tenant_transaction(conn, alice):
        updated = conn.execute("UPDATE users SET display_name = 'hacked' WHERE id = %s", (bob,)).rowcount
        deleted = conn.execute("DELETE FROM users WHERE id = %s", (bob,)).rowcount

    assert (updated, deleted) == (0, 0)
    with service_transaction(conn):
        assert conn.execute("SELECT display_name FROM users WHERE id = %s", (bob,)).fetchone() == (None,)


def test_writing_a_row_for_another_user_is_refused(two_users) -> None:
    conn, alice, bob = two_users

    with pytest.raises(psycopg.errors.InsufficientPrivilege), tenant_transaction(conn, alice):
        conn.execute(
            "INSERT INTO audit_log (user_id, action) VALUES (%s, 'bot.created')",
            (bob,),
        )


def test_the_audit_log_is_append_only_for_the_application(two_users) -> None:
    conn, alice, _ = two_users

    with pytest.raises(psycopg.errors.InsufficientPrivilege), tenant_transaction(conn, alice):
        conn.execute("DELETE FROM audit_log")


def test_no_acting_user_means_no_rows(two_users) -> None:
    conn, _, _ = two_users

    with conn.transaction():
        conn.execute("SET LOCAL ROLE tekoa_app")
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_identity_ends_with_the_transaction(two_users) -> None:
    conn, alice, _ = two_users
    login_role = conn.execute("SELECT current_user").fetchone()

    with tenant_transaction(conn, alice):
        assert conn.execute("SELECT current_user").fetchone() == ("tekoa_app",)

    assert conn.execute("SELECT current_user").fetchone() == login_role
    assert conn.execute("SELECT current_setting('tekoa.user_id', true)").fetchone() in {("",), (None,)}


def test_every_table_with_an_owner_column_enforces_row_level_security(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   array(SELECT p.polname FROM pg_policy p WHERE p.polrelid = c.oid ORDER BY 1)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind = 'r'
              AND (EXISTS (SELECT 1 FROM pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped)
                   OR c.relname = 'users')
            """
        ).fetchall()

    assert {name for name, *_ in tables} >= {"users", "audit_log"}
    for name, enabled, forced, policies in tables:
        assert enabled and forced, f"{name}: row level security must be enabled and forced"
        assert "tenant_isolation" in policies, f"{name}: missing tenant_isolation policy"


def test_a_tenancy_transaction_cannot_nest_inside_another(two_users) -> None:
    conn, alice, bob = two_users

    with pytest.raises(RuntimeError, match="no transaction open"), tenant_transaction(conn, alice):
        with tenant_transaction(conn, bob):
            pass
