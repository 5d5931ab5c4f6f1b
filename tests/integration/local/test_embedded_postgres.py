"""The embedded PostgreSQL recovers from a run that was killed: a server left running on the
data directory is stopped, and the new one starts on the same data."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tekoa.local.postgres import EmbeddedPostgres, wait_until_ready
from tests.conftest import private_directory


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with private_directory("tekoa-test-leftover-") as directory:
        yield directory / "pgdata"


def test_a_server_left_by_a_killed_run_is_stopped_and_the_data_kept(data_dir: Path) -> None:
    # Given a server a previous run left behind (its parent gone, nothing to stop it)
    server = EmbeddedPostgres(data_dir)
    server.prepare()
    leftover = subprocess.Popen(
        server.command(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user="pgserver" if os.geteuid() == 0 else None,
        start_new_session=True,
    )
    try:
        wait_until_ready(server.admin_conninfo, 60, leftover)
        with psycopg.connect(server.admin_conninfo, autocommit=True) as conn:
            conn.execute("CREATE DATABASE kept")

        # When a new run starts the embedded database
        restarted = EmbeddedPostgres(data_dir)
        admin = restarted.start()
        try:
            postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
            with psycopg.connect(admin) as conn:
                databases = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        finally:
            restarted.stop()
    finally:
        if leftover.poll() is None:
            leftover.kill()
        exited = leftover.wait(30)

    # Then the leftover server was stopped (cleanly) and the new one serves the same data
    assert exited == 0
    assert postmaster != leftover.pid
    assert "kept" in databases
