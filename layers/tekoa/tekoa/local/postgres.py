"""Embedded PostgreSQL 16 from the `pgserver` wheel: the local default when no DATABASE_URL.

The data directory persists across runs; the server listens on a Unix socket inside it,
so no TCP port can clash with another PostgreSQL on the machine.
"""

from __future__ import annotations

import subprocess
import time
import warnings
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tekoa.observability import logger

APP_DATABASE = "tekoa"
_START_ATTEMPTS = 4


class EmbeddedPostgres:
    """Starts (or re-attaches to) a PostgreSQL server whose data lives in `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start the server; return the admin conninfo of its `postgres` database."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
            warnings.simplefilter("ignore")
            import pgserver  # the wheel ships PostgreSQL binaries; imported only where needed

            get_server: Any = pgserver.get_server  # type: ignore[attr-defined]
            instances: dict[Path, Any] = pgserver.PostgresServer._instances  # type: ignore[attr-defined]
            # pgserver gives `pg_ctl start` a fixed 10 s; on a loaded machine the server can
            # still be starting when that expires (or when pgserver asserts it is ready).
            # pgserver caches the half-started handle, so forget it and ask again: the new
            # handle attaches to the postmaster already running once it is ready.
            for attempt in range(1, _START_ATTEMPTS + 1):
                try:
                    self._server = get_server(self.data_dir, cleanup_mode="stop")
                    self._server.get_uri()
                    break
                except (subprocess.TimeoutExpired, AssertionError):
                    instances.pop(self.data_dir, None)
                    if attempt == _START_ATTEMPTS:
                        raise
                    logger.warning("embedded postgres slow to start; waiting", extra={"attempt": attempt})
                    time.sleep(attempt)
        uri: str = self._server.get_uri()
        logger.info("embedded postgres started", extra={"data_dir": str(self.data_dir)})
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def database_url(admin_conninfo: str, dbname: str) -> str:
    """The same server's conninfo with another database name."""
    params = conninfo_to_dict(admin_conninfo)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def ensure_database(admin_conninfo: str, dbname: str = APP_DATABASE, template: str | None = None) -> str:
    """Create `dbname` if missing (optionally from a template); return its conninfo."""
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists is None:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
            if template is not None:
                statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(dbname), sql.Identifier(template)
                )
            conn.execute(statement)
    return database_url(admin_conninfo, dbname)


def drop_database(admin_conninfo: str, dbname: str) -> None:
    """Drop `dbname`, disconnecting whoever still uses it."""
    with psycopg.connect(admin_conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
