"""Helpers for the trading API tests: a per-test order queue, the executor draining it as the
event source mapping would, and market data as the market stream writes it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from functions.executor.handler import ExecutorHandler
from tekoa.db import markets as market_rows
from tekoa.db.connection import PooledDatabase, service_transaction
from tekoa.exchanges.simulated import simulated_rules
from tekoa.execution.executor import Executor
from tekoa.local.sqs_poller import SqsPoller
from tests.integration.execution.queues import FifoQueue, fifo_queue


class NoLiveBrokers:
    def live(self, *_: object) -> Any:
        raise AssertionError("these tests trade on paper")


@dataclass
class Exchange:
    """The platform behind the API: its order queue, the executor, and the market's prices."""

    queue: FifoQueue
    database: PooledDatabase

    def market(self, price: str, symbol: str = "BTC/USDT") -> None:
        with self.database.connection() as conn, service_transaction(conn):
            market_rows.upsert_rules(conn, [simulated_rules(symbol)])
            market_rows.record_last_trades(
                conn,
                [market_rows.LastTrade("simulated", symbol, Decimal(price), time.time_ns() // 1_000_000)],
            )

    def execute(self) -> int:
        """Run the executor over everything queued, as Lambda's event source mapping would."""
        poller = SqsPoller(
            self.queue.sqs,
            self.queue.url,
            ExecutorHandler(Executor(self.database, NoLiveBrokers())),
        )
        handled = 0
        while self.queue.depth():
            handled += poller.poll_once()
        return handled


@pytest.fixture
def exchange(api: httpx.Client, aws_settings: Any, settings: Any) -> Iterator[Exchange]:
    queue = fifo_queue(aws_settings)
    api.app.state.context = dataclasses.replace(api.app.state.context, order_queue=queue.queue)  # type: ignore[attr-defined]
    database = PooledDatabase(settings.database_url, max_size=4)
    try:
        yield Exchange(queue, database)
    finally:
        database.close()
