"""Migration files form a gap-free, well-named history."""

from __future__ import annotations

from pathlib import Path

import pytest

from tekoa.db.migrate import MigrationError, discover


def test_the_shipped_migrations_are_numbered_from_one_without_gaps() -> None:
    migrations = discover()

    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "foundation"


def test_a_gap_in_versions_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0003_c.sql").write_text("SELECT 1;")

    with pytest.raises(MigrationError, match="without gaps"):
        discover(tmp_path)


def test_a_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_first.sql").write_text("SELECT 1;")

    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        discover(tmp_path)
