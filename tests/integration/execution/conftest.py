"""Fixtures of the execution tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tekoa.db.connection import PooledDatabase
from tests.integration.execution.desk import Desk


@pytest.fixture
def desk(database_url: str) -> Iterator[Desk]:
    database = PooledDatabase(database_url, max_size=8)
    try:
        yield Desk(database)
    finally:
        database.close()
