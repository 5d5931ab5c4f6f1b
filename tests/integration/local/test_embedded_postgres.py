"""The embedded PostgreSQL recovers from a run that was killed: a server left running on the
data directory is stopped, and the new one starts on the same data."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tekoa.local.postgres import EmbeddedPostgres
from tests.conftest import private_directory


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with private_directory("tekoa-test-leftover-") as directory:
        yield directory / "pgdata"


def _leftover_server(data_dir: Path) -> subprocess.Popen[bytes]:
    """A server as a killed run leaves it: started straight from the wheel's binaries, with no
    parent that will stop it."""
    spec = importlib.util.find_spec("pgserver")
    assert spec is not None and spec.submodule_search_locations
    binaries = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    user = "pgserver" if os.geteuid() == 0 else None
    data_dir.mkdir(parents=True)
    if user is not None:
        import shutil

        data_dir.parent.chmod(0o755)  # the server's user must reach its data
        shutil.chown(data_dir, user, user)
    subprocess.run(
        [binaries / "initdb", "-D", data_dir, "--auth=trust", "-U", "postgres"],
        check=True,
        capture_output=True,
        user=user,
    )
    server = subprocess.Popen(
        [binaries / "postgres", "-D", data_dir, "-k", data_dir, "-c", "listen_addresses="],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=user,
        start_new_session=True,
    )
    admin = make_conninfo(host=str(data_dir), user="postgres", dbname="postgres")
    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute("CREATE DATABASE kept")
            return server
        except psycopg.OperationalError:
            assert time.monotonic() < deadline and server.poll() is None, "the leftover server did not start"
            time.sleep(0.1)


def test_a_server_left_by_a_killed_run_is_stopped_and_the_data_kept(data_dir: Path) -> None:
    # Given a server a previous run left behind
    leftover = _leftover_server(data_dir)
    try:
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

    # Then the leftover server was stopped (cleanly) and a new one serves the same data
    assert exited == 0
    assert postmaster != leftover.pid
    assert "kept" in databases


def test_a_server_whose_owner_lives_is_used_and_left_running(data_dir: Path) -> None:
    # Given the embedded database started by a live process (as `tekoa up` runs it)
    owner = EmbeddedPostgres(data_dir)
    owner.start()
    try:
        running = int((data_dir / "postmaster.pid").read_text().split()[0])
        # When another command (a backtest reading stored candles) asks for it, then is done
        guest = EmbeddedPostgres(data_dir)
        admin = guest.start()
        with psycopg.connect(admin) as conn:
            conn.execute("SELECT 1")
        guest.stop()

        # Then it used the running server and did not stop it
        assert int((data_dir / "postmaster.pid").read_text().split()[0]) == running
        with psycopg.connect(admin) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        owner.stop()
