"""The market stream's trading part against real PostgreSQL and SQS (moto): a followed market's
rules and last trade are stored, and a resting paper order the trades reach is triggered on the
order queue and filled by the executor's handler, once."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

from functions.executor.handler import ExecutorHandler
from tekoa.db import markets as market_rows
from tekoa.db.connection import service_transaction
from tekoa.domain.execution import OrderStatus
from tekoa.domain.orders import OrderType
from tekoa.execution.executor import Outcome
from tekoa.market.simulated import SimulatedExchange
from tekoa.market.stream.service import MarketStreamService
from tekoa.market.stream.trading import StreamTrading
from tests.integration.execution.desk import SYMBOL, Desk, now_ms
from tests.integration.execution.queues import fifo_queue
from tests.integration.market.market_support import config, eventually, run, start, stop


def _last_trade(desk: Desk) -> market_rows.LastTrade | None:
    with desk.database.connection() as conn, service_transaction(conn):
        return market_rows.last_trade(conn, "simulated", SYMBOL)


def test_a_resting_paper_order_is_triggered_by_the_stream_and_filled_at_the_trade_that_reached_it(
    desk: Desk, aws_settings: Any
) -> None:
    queue = fifo_queue(aws_settings)
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    # The wall clock's market: its trades come after the orders are placed, as live ones do.
    exchange = SimulatedExchange([SYMBOL], seed=11, speed=1.0)
    trading = StreamTrading("simulated", desk.database, queue.queue)
    assert trading.matcher is not None
    trading.matcher.refresh_s = 0.1
    service = MarketStreamService(
        exchange, desk.database, None, config(tick_s=0.1), clock_ms=exchange.now_ms, trading=trading
    )
    handler = ExecutorHandler(desk.executor(), sqs_client=queue.sqs)
    placed: dict[str, Any] = {}

    def place_both() -> None:
        # A buy limit just under the last trade and a buy stop just over it: whichever way the
        # price goes, it reaches one of them within moments.
        last = _last_trade(desk)
        assert last is not None
        desk.clock[0] = now_ms()
        for type, level in ((OrderType.LIMIT, last.price - 1), (OrderType.STOP, last.price + 1)):
            message = desk.intent_message(
                alice, account, bot, type=type, quantity="0.01", price=str(level), leg=type.value
            )
            placed[type.value] = desk.executor().handle(message)

    def execute_queued() -> bool:
        desk.clock[0] = now_ms()
        event = queue.receive_event()
        if event["Records"]:
            assert handler(event, None) == {"batchItemFailures": []}
        return any(desk.order(alice, r.order_id).status is OrderStatus.FILLED for r in placed.values())

    async def body() -> None:
        task = await start(service)
        try:
            await eventually(lambda: _last_trade(desk) is not None, "the market's last trade stored")
            await asyncio.to_thread(place_both)
            assert {r.outcome for r in placed.values()} == {Outcome.OPEN}
            deadline = time.monotonic() + 45
            while not await asyncio.to_thread(execute_queued):
                assert time.monotonic() < deadline, "no resting order was triggered and filled"
                await asyncio.sleep(0.1)
        finally:
            await stop(service, task)

    run(body, timeout_s=90)

    with desk.database.connection() as conn, service_transaction(conn):
        rules = market_rows.get_rules(conn, "simulated", SYMBOL)
    assert rules is not None and rules.quote == "USDT"
    orders = {r.order_id: desk.order(alice, r.order_id) for r in placed.values()}
    filled = [o for o in orders.values() if o.status is OrderStatus.FILLED]
    assert len(filled) >= 1 and trading.triggers_sent >= 1
    for order in filled:
        assert order.filled_quantity == Decimal("0.01")
        if order.type is OrderType.LIMIT:
            assert order.average_price == order.limit_price  # a resting limit fills at its price
        else:
            assert order.stop_price is not None and order.average_price is not None
            assert order.average_price >= order.stop_price  # a buy stop fills at or above its level
    desk.assert_ledger_consistent(alice, account)
