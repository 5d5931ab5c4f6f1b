"""Migrations apply once, in order, under a lock, and refuse edited history."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from tekoa.db.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate


def _history(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return [
            (v, n) for v, n in conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        ]


def test_a_fresh_database_gets_every_migration_once(empty_database_url: str) -> None:
    applied = migrate(empty_database_url)

    expected = [f"{m.version:04d}_{m.name}" for m in discover()]
    assert applied == expected
    assert _history(empty_database_url) == [(m.version, m.name) for m in discover()]


def test_running_again_changes_nothing(empty_database_url: str) -> None:
    migrate(empty_database_url)

    second = migrate(empty_database_url)

    assert second == []
    assert len(_history(empty_database_url)) == len(discover())


def test_concurrent_runners_apply_each_migration_exactly_once(empty_database_url: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(empty_database_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(len(r) for r in results) == [0, 0, 0, len(discover())]


def test_an_edited_applied_migration_is_refused(empty_database_url: str, tmp_path: Path) -> None:
    shutil.copytree(MIGRATIONS_DIR, tmp_path, dirs_exist_ok=True)
    migrate(empty_database_url, tmp_path)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")

    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(empty_database_url, tmp_path)


def test_a_failing_migration_leaves_no_trace(empty_database_url: str, tmp_path: Path) -> None:
    shutil.copytree(MIGRATIONS_DIR, tmp_path, dirs_exist_ok=True)
    next_version = discover()[-1].version + 1
    (tmp_path / f"{next_version:04d}_broken.sql").write_text(
        "CREATE TABLE half_done (id int); SELECT no_such_function();"
    )

    with pytest.raises(MigrationError, match="broken"):
        migrate(empty_database_url, tmp_path)

    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)
    assert [v for v, _ in _history(empty_database_url)] == [m.version for m in discover()]
