"""Numbered SQL migrations, applied in order under an advisory lock and recorded.

Files are `NNNN_name.sql` in `tekoa/db/migrations`. Each runs in its own transaction; a
session advisory lock serialises concurrent runners (two Lambdas cold-starting, a deploy
and a local start). An applied file whose checksum changed is an error: migrations are
append-only history.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tekoa.observability import logger

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x54454B4F41  # "TEKOA": one advisory lock for the whole migration run
_FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    """A migration file is malformed, edited after being applied, or failed."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One SQL file of the schema's history."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files, ordered by version; a version used twice is an error."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if match is None:
            raise MigrationError(f"migration file name must be NNNN_name.sql: {path.name}")
        migrations.append(Migration(int(match[1]), match[2], path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"migration versions must be unique, got {versions}")
    return sorted(migrations, key=lambda m: m.version)


_CREATE_HISTORY = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


def migrate(conninfo: str, directory: Path = MIGRATIONS_DIR, *, connect_timeout_s: int = 10) -> list[str]:
    """Apply pending migrations; return the names applied (empty when up to date).

    A lost or refused connection raises psycopg.OperationalError, and running again is safe
    (what was applied is recorded); a failing migration raises MigrationError and leaves the
    schema as it was.
    """
    migrations = discover(directory)
    applied_now: list[str] = []
    with psycopg.connect(
        conninfo, autocommit=True, prepare_threshold=None, connect_timeout=connect_timeout_s
    ) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(_CREATE_HISTORY)
            applied = _applied(conn)
            for migration in migrations:
                known = applied.get(migration.version)
                if known is not None:
                    if known != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{migration.name} changed after it was applied"
                        )
                    continue
                _apply(conn, migration)
                applied_now.append(f"{migration.version:04d}_{migration.name}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def _applied(conn: psycopg.Connection[Any]) -> dict[int, str]:
    rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {int(version): str(checksum) for version, checksum in rows}


def _apply(conn: psycopg.Connection[Any], migration: Migration) -> None:
    label = f"{migration.version:04d}_{migration.name}"
    try:
        with conn.transaction():
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
    except psycopg.Error as exc:
        raise MigrationError(f"migration {label} failed: {exc}") from exc
    logger.info("migration applied", extra={"migration": label})
