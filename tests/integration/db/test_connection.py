"""Connection helpers: the Lambda connection survives a dropped server connection."""

from __future__ import annotations

import psycopg

from tekoa.db.connection import LambdaDatabase, PooledDatabase


def _backend_pid(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def test_the_lambda_connection_is_reused_across_invocations(database_url: str) -> None:
    database = LambdaDatabase(database_url)

    with database.connection() as conn:
        first = _backend_pid(conn)
    with database.connection() as conn:
        second = _backend_pid(conn)

    assert first == second
    database.close()


def test_a_connection_killed_by_the_server_is_replaced_on_next_use(database_url: str) -> None:
    database = LambdaDatabase(database_url, ping_after_idle_s=0)
    with database.connection() as conn:
        killed = _backend_pid(conn)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (killed,))

    with database.connection() as conn:
        replacement = _backend_pid(conn)

    assert replacement != killed
    database.close()


def test_connections_do_not_use_server_side_prepared_statements(database_url: str) -> None:
    database = PooledDatabase(database_url, max_size=2)

    with database.connection() as conn:
        for _ in range(10):
            conn.execute("SELECT %s::int", (1,)).fetchone()
        prepared = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()

    assert prepared == (0,)
    database.close()


def test_an_unfinished_transaction_is_rolled_back_when_returned(database_url: str) -> None:
    database = LambdaDatabase(database_url)

    with database.connection() as conn:
        conn.execute("BEGIN")
        conn.execute("CREATE TEMP TABLE scratch (x int)")

    with database.connection() as conn:
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SELECT to_regclass('pg_temp.scratch')").fetchone() == (None,)
    database.close()
