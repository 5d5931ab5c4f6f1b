"""Connections to PostgreSQL and the tenancy-scoped transactions every query runs in.

Two ways to hold connections, one interface:
- `LambdaDatabase`: one lazy connection per execution environment, replaced when broken.
- `PooledDatabase`: a psycopg pool for long-lived processes (local API, market stream).
Both disable server-side prepared statements (`prepare_threshold=None`) so RDS Proxy can
multiplex connections instead of pinning them.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar
from uuid import UUID

import psycopg
from psycopg import pq, sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from tekoa.observability import logger
from tekoa.settings import Settings

T = TypeVar("T")

APP_ROLE = "tekoa_app"
"""Role for requests made on behalf of one user: row-level security applies."""
SERVICE_ROLE = "tekoa_service"
"""Role for the platform's own cross-tenant work (scheduler, executor, sign-in look-ups)."""


T_contra = TypeVar("T_contra", contravariant=True)


class BeforeCommit(Protocol[T_contra]):
    """Work to do in the transaction that wrote `result`, after the write and before commit
    (e.g. storing an idempotent request's response): both commit, or neither does."""

    def __call__(self, conn: psycopg.Connection[Any], result: T_contra, /) -> None: ...


class Database(Protocol):
    """Lends a connection for the length of a `with` block."""

    def connection(self) -> Any:
        """Context manager yielding a `psycopg.Connection`."""
        ...


def connect(conninfo: str, *, timeout_s: int = 10) -> psycopg.Connection[Any]:
    """Open one connection with the platform's options.

    Autocommit, so each `conn.transaction()` is a real transaction rather than a savepoint in
    an implicit one: tenancy settings made `LOCAL` then end exactly where the block ends.
    """
    return psycopg.connect(
        conninfo,
        autocommit=True,
        prepare_threshold=None,
        connect_timeout=timeout_s,
        application_name="tekoa",
    )


def resolve_conninfo(settings: Settings, fetch_secret: Callable[[str], str] | None = None) -> str:
    """DATABASE_URL when set, else the credentials secret (AWS), optionally via RDS Proxy."""
    if settings.database_url:
        return settings.database_url
    if settings.database_secret_arn and fetch_secret is not None:
        secret = json.loads(fetch_secret(settings.database_secret_arn))
        return make_conninfo(
            host=settings.database_host or secret["host"],
            port=secret.get("port", 5432),
            user=secret["username"],
            password=secret["password"],
            dbname=secret.get("dbname", "tekoa"),
            sslmode="require",
        )
    raise RuntimeError("No database configured: set DATABASE_URL or TEKOA_DATABASE_SECRET_ARN")


def retry_while_unreachable(
    action: Callable[[], T],
    *,
    deadline: float,
    first_delay_s: float = 1.0,
    max_delay_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `action`, again after a growing pause while the database cannot be reached, until
    `deadline` (a `time.monotonic()` value); then let the last error through.

    For one-shot work against a database that may be starting: a proxy just created, or an
    Aurora instance resuming from auto-pause. Only connection failures are retried.
    """
    delay = first_delay_s
    attempt = 1
    while True:
        try:
            return action()
        except psycopg.OperationalError as exc:
            if time.monotonic() + delay >= deadline:
                raise
            logger.warning(
                "database not reachable yet; retrying",
                extra={"attempt": attempt, "retry_in_s": delay, "error_type": type(exc).__name__},
            )
            sleep(delay)
            delay = min(delay * 2, max_delay_s)
            attempt += 1


class LambdaDatabase:
    """One connection per Lambda execution environment, opened on first use."""

    def __init__(
        self, conninfo: str | Callable[[], str], timeout_s: int = 10, ping_after_idle_s: float = 5.0
    ) -> None:
        self._conninfo = conninfo
        self._timeout_s = timeout_s
        self._ping_after_idle_s = ping_after_idle_s
        self._conn: psycopg.Connection[Any] | None = None
        self._last_used = 0.0
        self._lock = threading.Lock()

    def _open(self) -> psycopg.Connection[Any]:
        conninfo = self._conninfo() if callable(self._conninfo) else self._conninfo
        return connect(conninfo, timeout_s=self._timeout_s)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            conn = self._usable_connection()
            try:
                yield conn
            except psycopg.OperationalError:
                # The proxy or server dropped us: the next invocation starts afresh.
                conn.close()
                self._conn = None
                raise
            finally:
                self._last_used = time.monotonic()
                if not conn.closed and conn.info.transaction_status != pq.TransactionStatus.IDLE:
                    conn.rollback()

    def _usable_connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is not None and not (conn.closed or conn.broken):
            # A frozen execution environment may wake to a connection the proxy or server
            # closed meanwhile; one round trip after a pause is cheaper than a failed request.
            if time.monotonic() - self._last_used < self._ping_after_idle_s:
                return conn
            try:
                conn.execute("SELECT 1")
                return conn
            except psycopg.OperationalError:
                conn.close()
        self._conn = self._open()
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class PooledDatabase:
    """A connection pool for long-lived processes.

    A connection is checked (one round trip) only when it comes out of the pool after being
    idle for more than `ping_after_idle_s`, as `LambdaDatabase` does: a busy pool spends no
    round trip per checkout, and a connection the server dropped while idle is replaced.
    """

    def __init__(
        self, conninfo: str, *, max_size: int = 10, timeout_s: int = 10, ping_after_idle_s: float = 5.0
    ) -> None:
        self._ping_after_idle_s = ping_after_idle_s
        self._returned_at: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        self.pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={
                "autocommit": True,
                "prepare_threshold": None,
                "application_name": "tekoa",
                "connect_timeout": timeout_s,
            },
            check=self._check_after_idle,
            reset=self._note_return,
            timeout=timeout_s,
            open=True,
            name="tekoa",
        )

    def connection(self) -> Any:
        return self.pool.connection()

    def close(self) -> None:
        self.pool.close()

    def _note_return(self, conn: psycopg.Connection[Any]) -> None:
        self._returned_at[conn] = time.monotonic()

    def _check_after_idle(self, conn: psycopg.Connection[Any]) -> None:
        returned = self._returned_at.get(conn)
        if returned is None or time.monotonic() - returned > self._ping_after_idle_s:
            ConnectionPool.check_connection(conn)


@contextmanager
def tenant_transaction(conn: psycopg.Connection[Any], user_id: UUID) -> Iterator[psycopg.Connection[Any]]:
    """A transaction acting as `user_id`: row-level security hides every other tenant's rows.

    Role and user are set with `is_local` so they end with the transaction and a pooled
    connection never carries one user's identity into the next request.
    """
    settings = sql.SQL("SELECT set_config('role', {}, true), set_config('tekoa.user_id', {}, true)").format(
        sql.Literal(APP_ROLE), sql.Literal(str(user_id))
    )
    with _transaction(conn, settings):
        yield conn


@contextmanager
def service_transaction(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """A transaction for the platform's own cross-tenant work (explicit, never a default)."""
    with _transaction(conn, sql.SQL("SELECT set_config('role', {}, true)").format(sql.Literal(SERVICE_ROLE))):
        yield conn


@contextmanager
def _transaction(conn: psycopg.Connection[Any], settings: sql.Composed) -> Iterator[None]:
    # BEGIN and the identity go out as one simple-protocol query (no parameters: the values are
    # quoted literals), one round trip instead of two on every request.
    _refuse_nesting(conn)
    if conn.info.pipeline_status != pq.PipelineStatus.OFF:
        # A pipeline (the executor's) sends its statements together anyway, and its extended
        # protocol takes one command per statement: psycopg's transaction, then the identity.
        with conn.transaction():
            conn.execute(settings)
            yield
        return
    try:
        conn.execute(sql.SQL("BEGIN; {}").format(settings))
        yield
    except BaseException:
        if not conn.closed and conn.info.transaction_status != pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _refuse_nesting(conn: psycopg.Connection[Any]) -> None:
    # Inside an open transaction `transaction()` is only a savepoint, and a LOCAL role would
    # outlive the block: refuse rather than leak one identity into the next statement.
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise RuntimeError("tenancy transactions need a connection with no transaction open")
