"""The test suite's own database: private to this run, so two runs on one machine coexist."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict


def _pytest_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    return next(p for p in (base, *base.parents) if p.name.startswith("pytest-of-"))


def test_the_database_lives_outside_the_temp_root_every_pytest_session_shares(
    pg_admin: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Every new pytest session on the machine makes that root private again (0700) and rotates
    # old sessions out: a server another run keeps there loses its files mid-run.
    socket_dir = Path(conninfo_to_dict(pg_admin)["host"]).resolve()

    assert not socket_dir.is_relative_to(_pytest_root(tmp_path_factory).resolve())
