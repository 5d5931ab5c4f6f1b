"""Fixtures of the evaluator tests: a trading desk, a fresh order queue, candles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tekoa.db.connection import PooledDatabase
from tests.integration.evaluation.floor import Floor
from tests.integration.execution.queues import fifo_queue


@pytest.fixture
def floor(database_url: str, settings: Any) -> Iterator[Floor]:
    database = PooledDatabase(database_url, max_size=8)
    try:
        yield Floor(database, fifo_queue(settings))
    finally:
        database.close()
