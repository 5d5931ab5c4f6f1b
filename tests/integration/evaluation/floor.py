"""A trading floor for evaluator tests: the execution desk plus running bots of any strategy,
stored candles as the market stream writes them, an evaluator on a fresh order queue, and the
executor fed from that queue as Lambda's event source mapping would."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np

from functions.executor.handler import ExecutorHandler
from tekoa.db.candle_copy import copy_ohlcv
from tekoa.db.connection import PooledDatabase, service_transaction, tenant_transaction
from tekoa.domain.bots import BotAction
from tekoa.domain.timeframes import Timeframe
from tekoa.evaluation.tick import Due, Evaluator, EvaluatorConfig, TickReport
from tekoa.execution.messages import parse_message
from tekoa.market.sources import OhlcvRows
from tekoa.services import bots as bot_service
from tekoa.services import strategies as strategy_service
from tests.integration.execution.desk import SYMBOL, Desk, now_ms
from tests.integration.execution.queues import FifoQueue

_names = itertools.count()
M = 60_000


def closes_rows(closes: list[float] | np.ndarray, start: int) -> OhlcvRows:
    close = np.asarray(closes, dtype=np.float64)
    open_ = np.concatenate(([close[0]], close[:-1]))
    return OhlcvRows(
        open_time_ms=start + np.arange(len(close), dtype=np.int64) * M,
        open=open_,
        high=np.maximum(open_, close) * 1.0005,
        low=np.minimum(open_, close) * 0.9995,
        close=close,
        volume=np.full(len(close), 5.0),
    )


@dataclass
class Floor:
    database: PooledDatabase
    fifo: FifoQueue
    desk: Desk = field(init=False)

    def __post_init__(self) -> None:
        self.desk = Desk(self.database)

    def evaluator(self, **config: Any) -> Evaluator:
        return Evaluator(self.database, self.fifo.queue, config=EvaluatorConfig(**config))

    def running_bot(
        self,
        user_id: UUID,
        definition: dict[str, Any],
        *,
        symbol: str = SYMBOL,
        risk: dict[str, Any] | None = None,
    ) -> UUID:
        strategy = strategy_service.create_strategy(
            self.database,
            user_id,
            strategy_service.StrategyCreate.model_validate(
                {"name": f"s{next(_names)}", "definition": definition}
            ),
        )
        request: dict[str, Any] = {
            "name": f"b{next(_names)}",
            "strategy_id": strategy.id,
            "exchange": "simulated",
            "symbol": symbol,
        }
        if risk is not None:
            request["risk"] = risk
        bot = bot_service.create_bot(self.database, user_id, bot_service.BotCreate.model_validate(request))
        bot_service.change_status(self.database, user_id, bot.id, BotAction.START)
        return bot.id

    def candles(
        self, closes: list[float] | np.ndarray, *, end: int | None = None, symbol: str = SYMBOL
    ) -> int:
        """Store 1m candles with these closes, the last one the newest closed minute (or ending
        at `end`); returns the last candle's open time."""
        last = (now_ms() // M - 1) * M if end is None else end
        start = last - (len(closes) - 1) * M
        with self.database.connection() as conn, service_transaction(conn):
            copy_ohlcv(conn, "simulated", symbol, Timeframe.M1, closes_rows(closes, start))
        return last

    def tick(self, due: Due | None = None, **config: Any) -> TickReport:
        return self.evaluator(**config).tick(due or Due())

    def queued(self) -> list[Any]:
        """Receive (and leave in flight) every message on the queue."""
        out = []
        while True:
            batch = self.fifo.sqs.receive_message(QueueUrl=self.fifo.url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return out
            out += [parse_message(m["Body"]) for m in batch]

    def execute_queued(self) -> dict[str, Any]:
        """Hand the queue's messages to the executor as Lambda would, until it is empty."""
        handler = ExecutorHandler(self.desk.executor(), sqs_client=self.fifo.sqs)
        failures: list[Any] = []
        while True:
            event = self.fifo.receive_event()
            if not event["Records"]:
                return {"failures": failures}
            response = handler(event, None)
            failures += response.get("batchItemFailures", [])
            for record in event["Records"]:
                self.fifo.sqs.delete_message(QueueUrl=self.fifo.url, ReceiptHandle=record["receiptHandle"])

    def evaluations(self, user_id: UUID, bot_id: UUID) -> list[dict[str, Any]]:
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            rows = conn.execute(
                "SELECT candle_open_time, outcome, signal, reason, risk_verdict, risk::text, intents::text,"
                " strategy_version, sent_at IS NOT NULL FROM evaluations WHERE bot_id = %s"
                " ORDER BY candle_open_time",
                (bot_id,),
            ).fetchall()
        return [
            {
                "candle": r[0],
                "outcome": r[1],
                "signal": r[2],
                "reason": r[3],
                "risk_verdict": r[4],
                "risk": json.loads(r[5]),
                "intents": json.loads(r[6]),
                "strategy_version": r[7],
                "sent": r[8],
            }
            for r in rows
        ]

    def bot_status(self, user_id: UUID, bot_id: UUID) -> str:
        return bot_service.get_bot(self.database, user_id, bot_id).status.value

    def price(self, price: str | Decimal, symbol: str = SYMBOL) -> None:
        self.desk.market(Decimal(price), symbol)
