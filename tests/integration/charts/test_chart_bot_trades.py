"""A bot's chart from what the executor booked: its round trips as entry and exit markers, its
open position's entry, stop and targets as lines, and a new chart when the bot trades; a sell
fill that closes a trade renders the bot's chart by way of the bus, the chart queue and the
chart function, as in AWS."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from functions.charts.handler import ChartHandler
from tekoa.aws.charts import S3ChartObjects, SqsChartRequests
from tekoa.aws.clients import aws_client
from tekoa.aws.events import EventBridgePublisher
from tekoa.charts.messages import FilledOrder, OrderFilledEvent, parse_chart_message
from tekoa.charts.render import PositionMark, TradeMark
from tekoa.charts.worker import ChartWorker, RenderOutcome, bot_marks
from tekoa.db import charts as chart_rows
from tekoa.db.connection import PooledDatabase, tenant_transaction
from tekoa.domain.orders import OrderSide, ProtectionSpec, StopSpec, TargetSpec
from tekoa.domain.timeframes import Timeframe
from tekoa.execution.executor import Executor, Outcome
from tekoa.services.charts import ChartRequest, claim_chart
from tests.integration.charts.chart_support import drain, png_at, queue_url, sqs_event, store_candles
from tests.integration.execution.desk import Desk, NoLiveBrokers, now_ms

M = Timeframe.M1.ms
PROTECTION = ProtectionSpec(
    stop=StopSpec(kind="percent", value=Decimal(2)),
    targets=(
        TargetSpec(kind="percent", value=Decimal(3), size_fraction=Decimal("0.5")),
        TargetSpec(kind="percent", value=Decimal(5), size_fraction=Decimal("0.5")),
    ),
)


@pytest.fixture
def desk(aws_settings: Any, database_url: str) -> Iterator[Desk]:
    database = PooledDatabase(database_url, max_size=4)
    try:
        yield Desk(database)
    finally:
        database.close()


@pytest.fixture
def settings(aws_settings: Any, database_url: str) -> Any:
    return aws_settings.model_copy(update={"database_url": database_url})


def worker(desk: Desk, settings: Any) -> ChartWorker:
    return ChartWorker(desk.database, S3ChartObjects(settings), SqsChartRequests(settings))


def bot_chart(desk: Desk, user: UUID, bot: UUID) -> Any:
    """The bot's one chart."""
    with desk.database.connection() as conn, tenant_transaction(conn, user):
        (row,) = conn.execute("SELECT id FROM charts WHERE bot_id = %s", (bot,)).fetchall()
        chart = chart_rows.get_chart(conn, user, row[0])
        assert chart is not None
        return chart, bot_marks(conn, user, chart.document)


class Trader:
    """A paper bot trading at set times through the real executor, its events on the local bus."""

    def __init__(self, desk: Desk, settings: Any) -> None:
        self.desk = desk
        self.user = desk.user()
        self.account = desk.paper_account(self.user)
        self.bot = desk.bot(self.user)  # the scalper: simulated BTC/USDT, 1m
        self.executor = Executor(
            desk.database,
            NoLiveBrokers(),
            publisher=EventBridgePublisher(settings),
            clock_ms=lambda: desk.clock[0],
        )

    def trade(self, side: OrderSide, price: str, at_ms: int, **intent: Any) -> UUID:
        """An order of the bot filled at `price` (the paper model adds its slippage) at `at_ms`."""
        self.desk.clock[0] = at_ms
        self.desk.market(price)
        message = self.desk.intent_message(
            self.user,
            self.account,
            self.bot,
            side=side,
            quantity="0.01",
            candle=Timeframe.M1.open_time(at_ms),
            leg="entry" if side is OrderSide.BUY else "exit",
            reduce_only=side is OrderSide.SELL,
        )
        if intent:
            message = message.model_copy(update={"intent": message.intent.model_copy(update=intent)})
        result = self.executor.handle(message)
        assert result.outcome is Outcome.FILLED, result
        self.executor.publish(result.events)
        return result.order_id

    def fill_price(self, order_id: UUID) -> float:
        price = self.desk.order(self.user, order_id).average_price
        assert price is not None
        return float(price)


def test_a_closed_trade_renders_the_bots_chart_with_its_trades_and_open_position(
    desk: Desk, settings: Any
) -> None:
    trader = Trader(desk, settings)
    now = now_ms()
    store_candles(desk.database, 300, end=now, timeframe=Timeframe.M1)
    drain(settings)
    t1, t2, t3 = (Timeframe.M1.open_time(now) - k * M + 7_000 for k in (150, 90, 30))

    bought = trader.trade(OrderSide.BUY, "60000", t1, protection=PROTECTION)
    sold = trader.trade(OrderSide.SELL, "61000", t2)
    reopened = trader.trade(OrderSide.BUY, "60500", t3, protection=PROTECTION)

    # Only the sell's order.filled reached the chart queue (the bus rule), and the chart
    # function rendered the bot's chart from it.
    messages = drain(settings)
    assert len(messages) == 1
    handler = ChartHandler(worker(desk, settings))
    assert handler(sqs_event(settings, messages), None) == {"batchItemFailures": []}
    chart, marks = bot_chart(desk, trader.user, trader.bot)
    assert (chart.origin, chart.status) == ("trade_closed", "ready")
    assert png_at(S3ChartObjects(settings).url(chart.object_key)).size == (1280, 720)

    entry, exit_, reentry = (trader.fill_price(order) for order in (bought, sold, reopened))
    assert list(marks.trades) == [TradeMark("long", t1, entry, t2, exit_), TradeMark("long", t3, reentry)]
    position = desk.position(trader.user, desk.order(trader.user, reopened).position_id)
    assert position.protection is not None
    assert marks.position == PositionMark(
        "long",
        reentry,
        opened_time=t3,
        stop=float(position.protection.stop or 0),
        targets=tuple(float(t.price) for t in position.protection.targets),
    )
    assert len(marks.position.targets) == 2


def test_a_new_fill_makes_a_new_bot_chart(desk: Desk, settings: Any) -> None:
    trader = Trader(desk, settings)
    now = now_ms()
    store_candles(desk.database, 300, end=now, timeframe=Timeframe.M1)
    request = ChartRequest(bot_id=trader.bot)

    before, _ = claim_chart(desk.database, trader.user, request, origin="api", now_ms=now)
    again, created = claim_chart(desk.database, trader.user, request, origin="api", now_ms=now)
    trader.trade(OrderSide.BUY, "60000", now - 20 * M)
    after, _ = claim_chart(desk.database, trader.user, request, origin="api", now_ms=now)

    assert (again.id, created) == (before.id, False)
    assert after.id != before.id
    assert (before.document.data.fills, after.document.data.fills) == (0, 1)
    drain(settings)


def test_a_trade_closed_in_a_forming_candle_is_drawn_once_that_candle_is_stored(
    desk: Desk, settings: Any
) -> None:
    trader = Trader(desk, settings)
    candle = Timeframe.M1.open_time(now_ms()) - 10 * M  # the candle the trade closes in
    store_candles(desk.database, 300, end=candle, timeframe=Timeframe.M1)
    drain(settings)
    trader.trade(OrderSide.BUY, "60000", candle - 50 * M)
    sold = trader.trade(OrderSide.SELL, "61000", candle + 7_000)
    drain(settings)
    filled = FilledOrder(user_id=trader.user, order_id=sold, bot_id=trader.bot)

    # A second before that candle closes, the chart would end before the trade: it waits.
    outcome = worker(desk, settings).render_after_fill(filled, now_ms=candle + M - 1_000)

    assert outcome is RenderOutcome.DEFERRED
    assert drain(settings) == []  # delayed ...
    sqs = aws_client("sqs", settings)
    received = sqs.receive_message(
        QueueUrl=queue_url(settings), MaxNumberOfMessages=1, WaitTimeSeconds=15
    )  # ... until 5 s past the candle's close
    (message,) = received["Messages"]
    sqs.delete_message(QueueUrl=queue_url(settings), ReceiptHandle=message["ReceiptHandle"])
    event = parse_chart_message(message["Body"])
    assert isinstance(event, OrderFilledEvent) and event.detail == filled

    # The market stream stores the candle; the event comes round again and is drawn.
    store_candles(desk.database, 301, end=candle + M, timeframe=Timeframe.M1)
    assert ChartHandler(worker(desk, settings))(sqs_event(settings, [message]), None) == {
        "batchItemFailures": []
    }
    chart, marks = bot_chart(desk, trader.user, trader.bot)
    assert chart.status == "ready" and chart.document.end > candle
    assert [(t.exit_time, t.exit_price) for t in marks.trades] == [(candle + 7_000, trader.fill_price(sold))]
