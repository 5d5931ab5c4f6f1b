"""Housekeeping that keeps the platform's bookkeeping tables from growing forever."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from tekoa.db import idempotency, login_attempts, ws_connections
from tekoa.db.connection import Database, service_transaction
from tekoa.observability import logger
from tekoa.settings import Settings


@dataclass(frozen=True, slots=True)
class Purged:
    """How many rows each purge deleted."""

    idempotency_keys: int
    login_attempts: int
    signup_attempts: int
    ws_connections: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def purge_expired(database: Database, settings: Settings, now: datetime | None = None) -> Purged:
    """Delete idempotency keys past their expiry, sign-in / sign-up attempts older than the
    throttling windows (they no longer count), and WebSocket connections past their expiry."""
    now = now or datetime.now(UTC)
    with database.connection() as conn, service_transaction(conn):
        purged = Purged(
            idempotency_keys=idempotency.purge_expired_idempotency_keys(conn),
            login_attempts=login_attempts.purge_login_attempts(
                conn, now - timedelta(seconds=settings.login_failure_window_s)
            ),
            signup_attempts=login_attempts.purge_signups(
                conn, now - timedelta(seconds=settings.signup_window_s)
            ),
            # API Gateway closed them (two hours at most); their $disconnect was missed.
            ws_connections=ws_connections.purge_expired_connections(conn),
        )
    logger.info("expired rows purged", extra=purged.as_dict())
    return purged
