"""Paper matching in the market stream: which trade of a batch reaches which resting order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import uuid4

import numpy as np

from tekoa.domain.orders import OrderSide, OrderType
from tekoa.execution.messages import OrderMessage, TriggerMessage
from tekoa.market.sources import TradeBatch
from tekoa.market.stream.trading import PaperMatcher, RestingOrder


class Queue:
    def __init__(self) -> None:
        self.sent: list[OrderMessage] = []
        self.fail = False

    def send(self, messages: Sequence[OrderMessage]) -> None:
        if self.fail:
            raise OSError("queue unreachable")
        self.sent.extend(messages)


def batch(symbol: str, trades: list[tuple[int, float]], first_id: int = 100) -> TradeBatch:
    return TradeBatch(
        exchange="simulated",
        symbol=symbol,
        timestamps_ms=np.array([t for t, _ in trades], dtype=np.int64),
        prices=np.array([p for _, p in trades], dtype=np.float64),
        amounts=np.ones(len(trades)),
        trade_ids=np.arange(first_id, first_id + len(trades), dtype=np.int64),
    )


def resting(side: OrderSide, type: OrderType, level: float, placed_ms: int = 1_000) -> RestingOrder:
    return RestingOrder(
        order_id=uuid4(),
        user_id=uuid4(),
        account_id=uuid4(),
        client_order_id=f"tk{uuid4().hex[:20]}",
        symbol="BTC/USDT",
        side=side,
        type=type,
        level=level,
        placed_ms=placed_ms,
    )


def matcher(*orders: RestingOrder) -> tuple[PaperMatcher, Queue]:
    queue = Queue()
    paper = PaperMatcher("simulated", database=Any, queue=queue, clock_ms=lambda: 9_999)  # type: ignore[arg-type]
    paper.resting = {"BTC/USDT": list(orders)}
    return paper, queue


def test_each_order_is_triggered_by_the_first_trade_after_it_that_reaches_its_level() -> None:
    buy_limit = resting(OrderSide.BUY, OrderType.LIMIT, 59_000)
    sell_limit = resting(OrderSide.SELL, OrderType.LIMIT, 61_000)
    buy_stop = resting(OrderSide.BUY, OrderType.STOP, 60_500, placed_ms=2_500)
    sell_stop = resting(OrderSide.SELL, OrderType.STOP, 58_000)
    paper, queue = matcher(buy_limit, sell_limit, buy_stop, sell_stop)
    trades = [(2_000, 60_600.0), (3_000, 59_000.0), (4_000, 60_700.0), (5_000, 58_999.5)]

    paper.observe(batch("BTC/USDT", trades))
    asyncio.run(paper.send())

    sent = {m.order_id: m for m in queue.sent if isinstance(m, TriggerMessage)}
    # The buy limit at 59,000 is reached at exactly its price; the buy stop placed at 2.5 s
    # ignores the 60,600 trade before it and triggers on 60,700; the others are not reached.
    assert set(sent) == {buy_limit.order_id, buy_stop.order_id}
    assert (sent[buy_limit.order_id].price, sent[buy_limit.order_id].trade_time) == (Decimal("59000"), 3_000)
    assert sent[buy_limit.order_id].trade_id == "101"
    assert (sent[buy_stop.order_id].price, sent[buy_stop.order_id].trade_time) == (Decimal("60700"), 4_000)
    assert all(m.enqueued_at == 9_999 for m in queue.sent)


def test_an_order_is_triggered_once_and_other_markets_do_not_reach_it() -> None:
    order = resting(OrderSide.BUY, OrderType.LIMIT, 59_000)
    paper, queue = matcher(order)

    paper.observe(batch("ETH/USDT", [(2_000, 100.0)]))
    paper.observe(batch("BTC/USDT", [(2_000, 58_000.0)]))
    paper.observe(batch("BTC/USDT", [(3_000, 57_000.0)], first_id=200))
    asyncio.run(paper.send())

    assert [m.order_id for m in queue.sent if isinstance(m, TriggerMessage)] == [order.order_id]


def test_triggers_that_could_not_be_sent_are_sent_on_the_next_tick() -> None:
    order = resting(OrderSide.SELL, OrderType.LIMIT, 61_000)
    paper, queue = matcher(order)
    queue.fail = True

    paper.observe(batch("BTC/USDT", [(2_000, 61_500.0)]))
    asyncio.run(paper.send())
    queue.fail = False
    asyncio.run(paper.send())

    assert len(queue.sent) == 1 and paper.triggers_sent == 1
