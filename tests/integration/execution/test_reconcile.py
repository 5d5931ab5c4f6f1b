"""Reconciliation against real PostgreSQL, moto and the fake Binance: tampered books are
reported, live orders catch up with the exchange (fills once, lost only after repeated
look-ups), balances follow the exchange, unknown orders are reported, stuck and resting paper
orders are carried on, and a crash's unpublished events reach the bus."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from functions.executor.handler import ExecutorHandler
from tekoa.aws.events import EventBridgePublisher
from tekoa.db import activity as activity_rows
from tekoa.db import candles as candle_store
from tekoa.db import orders as order_rows
from tekoa.db.connection import service_transaction, tenant_transaction
from tekoa.db.order_context import load_order_context
from tekoa.domain.candles import Candle
from tekoa.domain.execution import Account, Order, OrderStatus, RejectCode
from tekoa.domain.orders import OrderSide, OrderType
from tekoa.domain.timeframes import Timeframe
from tekoa.execution import booking
from tekoa.execution.brokers import ExchangeOrder, LiveBroker
from tekoa.execution.executor import Executor, ExecutorConfig, OrderPending
from tekoa.execution.ledger_check import ledger_problems
from tekoa.execution.live import CredentialBrokers
from tekoa.execution.reconcile import ReconcileConfig, Reconciler, ReconcileReport
from tekoa.execution.writes import Writes
from tekoa.local.sqs_poller import SqsPoller
from tekoa.security.local_key import LocalFileKeyProvider
from tests.fakes.exchange import FakeBinance, FakeBinanceThread
from tests.integration.execution.desk import Desk
from tests.integration.execution.queues import FifoQueue, fifo_queue


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinanceThread() as running:
        yield running


@dataclass
class Live:
    user: uuid.UUID
    account: Account
    bot: uuid.UUID
    brokers: CredentialBrokers


@pytest.fixture
def live(desk: Desk, fake: FakeBinance, tmp_path: Path) -> Live:
    keys = LocalFileKeyProvider(tmp_path / "master.key")
    brokers = CredentialBrokers(
        desk.database, keys, url_overrides={"binance": fake.url_overrides()}, timeout_ms=1_000
    )
    desk.brokers = brokers
    user = desk.user()
    account = desk.live_account(user, fake, keys)
    bot = desk.bot(user, exchange="binance", credential_id=account.credential_id)
    reconciler(desk).reconcile_live_account(user, account, ReconcileReport())
    return Live(user, account, bot, brokers)


def reconciler(desk: Desk, queue: FifoQueue | None = None, **config: Any) -> Reconciler:
    return Reconciler(
        desk.database,
        desk.executor(lost_min_age_s=0),
        desk.brokers,
        queue=None if queue is None else queue.queue,
        publisher=None,
        config=ReconcileConfig(**config),
    )


def drain(queue: FifoQueue, desk: Desk) -> None:
    poller = SqsPoller(queue.sqs, queue.url, ExecutorHandler(desk.executor(), sqs_client=queue.sqs))
    while queue.depth():
        poller.poll_once()


def activity(desk: Desk, user: uuid.UUID) -> list[str]:
    with desk.database.connection() as conn, tenant_transaction(conn, user):
        entries = activity_rows.list_activity(
            conn, user, bot_id=None, level=None, since=None, until=None, before_id=None, limit=100
        )
    return [entry.message for entry in entries]


# --------------------------------------------------------------------------- ledger


def test_books_that_differ_from_their_entries_are_reported(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    assert ledger_problems(desk.database, alice, account.id) == []
    with desk.database.connection() as conn:  # someone edits a balance behind the ledger's back
        conn.execute(
            "UPDATE balances SET amount = amount + 1 WHERE account_id = %s AND book = 'available'",
            (account.id,),
        )

    report = reconciler(desk).run()

    assert report.ledger_mismatches == 1
    assert any("balances differ from the ledger" in line for line in activity(desk, alice))


# --------------------------------------------------------------------------- live orders


def test_a_resting_live_order_filled_later_is_booked_once(desk: Desk, live: Live, fake: FakeBinance) -> None:
    placed = desk.executor().handle(
        desk.intent_message(
            live.user, live.account, live.bot, type=OrderType.LIMIT, quantity="0.01", price="59000"
        )
    )
    order = desk.order(live.user, placed.order_id)
    assert order.status is OrderStatus.OPEN
    fake.fill_resting(order.client_order_id)

    first = reconciler(desk).run()
    second = reconciler(desk).run()

    filled = desk.order(live.user, order.id)
    assert (filled.status, filled.filled_quantity, filled.average_price) == (
        OrderStatus.FILLED,
        Decimal("0.01"),
        Decimal("59000"),
    )
    assert (first.live_orders_updated, second.live_orders_checked) == (1, 0)
    assert desk.balance(live.user, live.account, "BTC") == Decimal("0.01")
    desk.assert_ledger_consistent(live.user, live.account)


@dataclass
class NeverSends:
    """A broker whose process died just before the create left: the exchange never saw it."""

    inner: LiveBroker

    def place(self, order: Order) -> ExchangeOrder:
        raise KeyboardInterrupt

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_an_order_the_exchange_never_saw_is_lost_only_after_repeated_lookups(
    desk: Desk, live: Live, fake: FakeBinance
) -> None:
    message = desk.intent_message(live.user, live.account, live.bot, quantity="0.01")

    class Dying:
        def live(self, user_id: uuid.UUID, account: Account) -> LiveBroker:
            return NeverSends(live.brokers.live(user_id, account))  # type: ignore[return-value]

    with pytest.raises(KeyboardInterrupt):
        Executor(desk.database, Dying()).handle(message)
    (order,) = desk.orders(live.user, live.account)
    usdt = desk.balance(live.user, live.account, "USDT")

    executor = Executor(desk.database, live.brokers, config=ExecutorConfig(lost_min_age_s=0))
    for lookups in (1, 2):
        with pytest.raises(OrderPending):
            executor.handle(message)
        assert desk.order(live.user, order.id).not_found_count == lookups
    result = executor.handle(message)

    lost = desk.order(live.user, order.id)
    assert (result.status, lost.reject_code) == (OrderStatus.EXPIRED, RejectCode.LOST)
    assert fake.create_requests == []
    assert desk.balance(live.user, live.account, "USDT") > usdt  # the hold came back
    desk.assert_ledger_consistent(live.user, live.account)


def test_live_balances_follow_the_exchange_and_the_change_is_reported(
    desk: Desk, live: Live, fake: FakeBinance
) -> None:
    before = desk.balance(live.user, live.account, "USDT")
    fake.balances["USDT"] += Decimal(250)  # a deposit made on the exchange

    report = reconciler(desk).run()

    assert desk.balance(live.user, live.account, "USDT") == before + 250
    assert report.balance_adjustments == 1
    assert any("USDT +250" in line for line in activity(desk, live.user))
    desk.assert_ledger_consistent(live.user, live.account)


def test_an_order_tekoa_placed_that_is_open_on_the_exchange_but_not_here_is_drift(
    desk: Desk, live: Live, fake: FakeBinance
) -> None:
    client = live.brokers.live(live.user, live.account).client  # type: ignore[attr-defined]
    client.create_order("BTC/USDT", "limit", "buy", 0.001, 50000, {"newClientOrderId": "placed-by-hand"})
    client.create_order("BTC/USDT", "limit", "buy", 0.001, 50000, {"newClientOrderId": "tk-lost-to-us"})
    desk.executor().handle(
        desk.intent_message(
            live.user, live.account, live.bot, type=OrderType.LIMIT, quantity="0.01", price="59000"
        )
    )

    first = reconciler(desk).run()

    assert [line for line in first.drift if "is open on binance" in line] == [
        "order tk-lost-to-us (BTC/USDT) is open on binance but not working in Tekoa: check it on the exchange"
    ]
    assert sum("tk-lost-to-us" in line for line in activity(desk, live.user)) == 1


# --------------------------------------------------------------------------- carried on


def test_a_resting_paper_order_fills_from_a_stored_candle_after_a_restart(
    desk: Desk, aws_settings: Any
) -> None:
    queue = fifo_queue(aws_settings)
    alice = desk.user()
    account = desk.paper_account(alice)
    desk.market("60000")
    placed = desk.executor().handle(
        desk.intent_message(
            alice, account, desk.bot(alice), type=OrderType.LIMIT, quantity="0.1", price="59000"
        )
    )
    next_minute = (desk.clock[0] // 60_000 + 1) * 60_000
    with desk.database.connection() as conn, service_transaction(conn):
        candle_store.upsert_candles(
            conn,
            [
                Candle(
                    "simulated",
                    "BTC/USDT",
                    Timeframe.M1,
                    next_minute,
                    *map(Decimal, ("60010", "60050", "59500", "59600", "12")),
                    40,
                ),
                Candle(
                    "simulated",
                    "BTC/USDT",
                    Timeframe.M1,
                    next_minute + 60_000,
                    *map(Decimal, ("59600", "59700", "58800", "59100", "9")),
                    30,
                ),
            ],
        )

    report = reconciler(desk, queue).run()
    drain(queue, desk)

    order = desk.order(alice, placed.order_id)
    assert report.triggers == 1
    assert (order.status, order.average_price) == (OrderStatus.FILLED, Decimal("59000"))
    desk.assert_ledger_consistent(alice, account)


def test_an_order_claimed_but_never_queued_is_sent_again(desk: Desk, aws_settings: Any) -> None:
    queue = fifo_queue(aws_settings)
    alice = desk.user()
    account = desk.paper_account(alice)
    desk.market("60000")
    with desk.database.connection() as conn, tenant_transaction(conn, alice):  # what the API commits
        load_order_context(conn, alice, account.id, client_order_id="manual-1")
        writes = Writes()
        order = booking.claim(
            writes,
            alice,
            account,
            order_rows.new_order(
                account.id,
                bot_id=None,
                client_order_id="manual-1",
                exchange="simulated",
                symbol="BTC/USDT",
                side=OrderSide.BUY,
                type=OrderType.MARKET,
                quantity=Decimal("0.01"),
                limit_price=None,
                stop_price=None,
                reduce_only=False,
                intent={},
            ),
            hold_asset="USDT",
            hold_amount=Decimal(700),
            source="manual",
        )
        writes.flush(conn)

    reconciler(desk, queue, stuck_after_s=0).run()
    drain(queue, desk)

    filled = desk.order(alice, order.id)
    assert filled.status is OrderStatus.FILLED
    desk.assert_ledger_consistent(alice, account)


def test_events_a_crash_left_in_the_outbox_reach_the_bus(desk: Desk, aws_settings: Any) -> None:
    region, endpoint = aws_settings.aws_region, aws_settings.aws_endpoint_url
    sqs = boto3.client("sqs", region_name=region, endpoint_url=endpoint)
    events = boto3.client("events", region_name=region, endpoint_url=endpoint)
    name = f"orders-{uuid.uuid4().hex[:8]}"
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = aws_settings.names.event_bus
    alice = desk.user()
    events.put_rule(
        Name=name,
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["tekoa"], "detail": {"user_id": [str(alice)]}}),
    )
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    try:
        account = desk.paper_account(alice)
        desk.market("60000")
        desk.executor().handle(
            desk.intent_message(alice, account, desk.bot(alice))
        )  # no publisher: a "crash"

        published = Reconciler(
            desk.database,
            desk.executor(),
            desk.brokers,
            queue=None,
            publisher=EventBridgePublisher(aws_settings),
            config=ReconcileConfig(outbox_after_s=0),
        ).run()

        bodies = [
            json.loads(m["Body"])
            for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        ]
        assert published.events_published == 1
        assert [(b["detail-type"], b["detail"]["status"]) for b in bodies] == [("order.filled", "filled")]
    finally:
        events.remove_targets(Rule=name, EventBusName=bus, Ids=["q"])
        events.delete_rule(Name=name, EventBusName=bus)
