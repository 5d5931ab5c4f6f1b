"""Migration files form a gap-free, well-named history."""

from __future__ import annotations

from pathlib import Path

import pytest

from tekoa.db.migrate import MigrationError, discover


def test_the_shipped_migrations_start_with_the_foundation_in_order() -> None:
    migrations = discover()

    versions = [m.version for m in migrations]
    assert versions == sorted(versions)
    assert migrations[0].name == "foundation"


def test_a_version_used_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")

    with pytest.raises(MigrationError, match="unique"):
        discover(tmp_path)


def test_a_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_first.sql").write_text("SELECT 1;")

    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        discover(tmp_path)
