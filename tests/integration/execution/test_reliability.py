"""Each order placed at most once, each fill recorded exactly once — under redelivery,
concurrency, crashes, timeouts and poison messages. Real PostgreSQL, real SQS on moto, real
ccxt against the loopback fake Binance."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from functions.executor.handler import ExecutorHandler
from tekoa.db import accounts as account_rows
from tekoa.db.connection import tenant_transaction
from tekoa.domain.execution import Account, Order, OrderStatus, RejectCode, TradingState
from tekoa.domain.orders import OrderType
from tekoa.execution.brokers import ExchangeOrder, LiveBroker
from tekoa.execution.executor import Executor
from tekoa.execution.live import CredentialBrokers
from tekoa.execution.messages import dump_message
from tekoa.execution.reconcile import Reconciler
from tekoa.local.sqs_poller import SqsPoller
from tekoa.security.local_key import LocalFileKeyProvider
from tests.fakes.exchange import FakeBinance, FakeBinanceThread, OrderFault
from tests.integration.execution.desk import Desk
from tests.integration.execution.queues import FifoQueue, fifo_queue


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with FakeBinanceThread() as running:
        yield running


@dataclass
class Live:
    """A live trader on the fake exchange."""

    user: UUID
    account: Account
    bot: UUID
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
    desk.sync_live(
        user, account, Reconciler(desk.database, desk.executor(), brokers, queue=None, publisher=None)
    )
    return Live(user, account, bot, brokers)


def handler_for(desk: Desk, queue: FifoQueue | None = None, **config: Any) -> ExecutorHandler:
    return ExecutorHandler(desk.executor(**config), sqs_client=None if queue is None else queue.sqs)


def only_order(desk: Desk, user: UUID, account: Account) -> Order:
    (order,) = desk.orders(user, account)
    return order


# --------------------------------------------------------------------------- duplicates


def test_the_same_message_delivered_three_times_concurrently_places_one_order(
    desk: Desk, live: Live, fake: FakeBinance, aws_settings: Any
) -> None:
    queue = fifo_queue(aws_settings)
    queue.queue.send([desk.intent_message(live.user, live.account, live.bot, quantity="0.01")])
    event = queue.receive_event()
    usdt_before = desk.balance(live.user, live.account, "USDT")

    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(lambda h: h(event, None), [handler_for(desk) for _ in range(3)]))

    assert len(fake.create_requests) == 1
    order = only_order(desk, live.user, live.account)
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, Decimal("0.01"))
    # One debit: 0.01 BTC at 60000 plus the exchange's 0.1 % fee.
    assert usdt_before - desk.balance(live.user, live.account, "USDT") == Decimal("600.6")
    assert desk.balance(live.user, live.account, "BTC") == Decimal("0.01")
    # A delivery that found the order in flight under another worker asks to be retried.
    assert sum(len(r["batchItemFailures"]) for r in responses) <= 2
    desk.assert_ledger_consistent(live.user, live.account)


def test_the_same_paper_message_delivered_three_times_concurrently_fills_once(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000")
    message = desk.intent_message(alice, account, bot, quantity="0.01")
    executors = [desk.executor() for _ in range(3)]
    calls: list[UUID] = []
    for executor in executors:
        arrive = executor.paper.on_arrival

        def counted(order: Order, *args: Any, _arrive: Any = arrive) -> Any:
            calls.append(order.id)
            return _arrive(order, *args)

        executor.paper.on_arrival = counted  # type: ignore[method-assign]

    with ThreadPoolExecutor(3) as pool:
        outcomes = sorted(r.outcome.value for r in pool.map(lambda e: e.handle(message), executors))

    assert outcomes == ["duplicate", "duplicate", "filled"]
    assert len(calls) == 1
    assert desk.balance(alice, account, "BTC") == Decimal("0.01")
    desk.assert_ledger_consistent(alice, account)


def test_the_same_intent_under_two_message_ids_is_one_order(
    desk: Desk, live: Live, fake: FakeBinance, aws_settings: Any
) -> None:
    queue = fifo_queue(aws_settings)
    first = desk.intent_message(live.user, live.account, live.bot)
    second = first.model_copy(update={"enqueued_at": first.enqueued_at + 400_000})  # after SQS's dedup window
    queue.send_raw(dump_message(first), str(live.account.id), "delivery-1")
    queue.send_raw(dump_message(second), str(live.account.id), "delivery-2")
    poller = SqsPoller(queue.sqs, queue.url, handler_for(desk, queue))

    while queue.depth():
        poller.poll_once()

    assert len(fake.create_requests) == 1
    assert only_order(desk, live.user, live.account).status is OrderStatus.FILLED
    assert desk.balance(live.user, live.account, "BTC") == Decimal("0.01")
    desk.assert_ledger_consistent(live.user, live.account)


# --------------------------------------------------------------------------- crashes, timeouts


class ProcessDied(BaseException):
    """Stands for the process dying at this line (not an Exception: nothing handles it)."""


@dataclass
class DieAfterPlacing:
    """A broker whose process dies right after the exchange accepted the order."""

    inner: LiveBroker

    def place(self, order: Order) -> ExchangeOrder:
        self.inner.place(order)
        raise ProcessDied()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class Dying:
    brokers: CredentialBrokers

    def live(self, user_id: UUID, account: Account) -> LiveBroker:
        return DieAfterPlacing(self.brokers.live(user_id, account))  # type: ignore[return-value]


def test_a_crash_after_the_exchange_accepted_is_adopted_on_retry_without_a_second_create(
    desk: Desk, live: Live, fake: FakeBinance
) -> None:
    message = desk.intent_message(live.user, live.account, live.bot, quantity="0.01")
    doomed = Executor(desk.database, Dying(live.brokers))

    with pytest.raises(ProcessDied):
        doomed.handle(message)
    assert only_order(desk, live.user, live.account).status is OrderStatus.SUBMITTED

    result = desk.executor().handle(message)

    assert len(fake.create_requests) == 1
    order = only_order(desk, live.user, live.account)
    assert (result.order_id, order.status, order.filled_quantity) == (
        order.id,
        OrderStatus.FILLED,
        Decimal("0.01"),
    )
    assert order.exchange_order_id == str(fake.order_by_client_id(order.client_order_id).order_id)  # type: ignore[union-attr]
    assert desk.balance(live.user, live.account, "BTC") == Decimal("0.01")
    desk.assert_ledger_consistent(live.user, live.account)


def test_a_timeout_on_create_with_the_order_placed_is_not_resent(
    desk: Desk, live: Live, fake: FakeBinance
) -> None:
    fake.slow_answer_s = 2.5
    fake.script_next_order(OrderFault.ACCEPT_THEN_TIMEOUT)

    result = desk.executor().handle(desk.intent_message(live.user, live.account, live.bot, quantity="0.01"))

    assert len(fake.create_requests) == 1
    assert result.status is OrderStatus.FILLED
    assert desk.balance(live.user, live.account, "BTC") == Decimal("0.01")
    desk.assert_ledger_consistent(live.user, live.account)


def test_an_exchange_rejection_releases_the_hold_and_says_why(
    desk: Desk, live: Live, fake: FakeBinance
) -> None:
    fake.script_next_order(OrderFault.REJECT)
    usdt = desk.balance(live.user, live.account, "USDT")

    result = desk.executor().handle(desk.intent_message(live.user, live.account, live.bot))

    order = only_order(desk, live.user, live.account)
    assert (result.status, order.reject_code) == (OrderStatus.REJECTED, RejectCode.EXCHANGE_REJECTED)
    assert "insufficient balance" in (order.reason or "")
    assert desk.balance(live.user, live.account, "USDT") == usdt
    desk.assert_ledger_consistent(live.user, live.account)


def test_a_partial_fill_is_booked_and_the_rest_stays_held(desk: Desk, live: Live, fake: FakeBinance) -> None:
    fake.script_next_order(OrderFault.PARTIAL_FILL)

    desk.executor().handle(
        desk.intent_message(
            live.user, live.account, live.bot, type=OrderType.LIMIT, quantity="0.02", price="60000"
        )
    )

    order = only_order(desk, live.user, live.account)
    assert (order.status, order.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, Decimal("0.01"))
    assert order.held_amount > 0
    desk.assert_ledger_consistent(live.user, live.account)


# --------------------------------------------------------------------------- poison messages


def test_a_batch_with_two_bad_records_reports_exactly_those_two(desk: Desk, aws_settings: Any) -> None:
    queue = fifo_queue(aws_settings)
    desk.market("60000")
    good = []
    for _ in range(8):
        user = desk.user()
        account = desk.paper_account(user)
        good.append(desk.intent_message(user, account, desk.bot(user), quantity="0.001"))
    queue.queue.send(good[:4])
    queue.send_raw('{"kind": "place", "intent": "not an intent"}', "bad-group-1", "bad-1")
    queue.queue.send(good[4:])
    queue.send_raw("not json at all", "bad-group-2", "bad-2")
    event = queue.receive_event()
    bad_ids = {
        r["messageId"] for r in event["Records"] if r["attributes"]["MessageGroupId"].startswith("bad")
    }

    response = handler_for(desk)(event, None)

    assert len(event["Records"]) == 10
    assert {item["itemIdentifier"] for item in response["batchItemFailures"]} == bad_ids


def test_a_malformed_message_ends_in_the_dead_letter_queue_without_blocking_its_group(
    desk: Desk, aws_settings: Any
) -> None:
    queue = fifo_queue(aws_settings, max_receive_count=3, visibility_timeout_s=60)
    alice = desk.user()
    account = desk.paper_account(alice)
    desk.market("60000")
    queue.send_raw('{"kind": "execute", "user_id": "nobody"}', str(account.id), "poison")
    queue.queue.send([desk.intent_message(alice, account, desk.bot(alice), quantity="0.001")])
    poller = SqsPoller(queue.sqs, queue.url, handler_for(desk, queue))

    for _ in range(10):
        if not queue.depth():
            break
        poller.poll_once()

    assert queue.depth() == 0
    assert queue.depth(queue.dlq_url) == 1
    dead = queue.sqs.receive_message(QueueUrl=queue.dlq_url)["Messages"][0]
    assert dead["Body"] == '{"kind": "execute", "user_id": "nobody"}'
    assert only_order(desk, alice, account).status is OrderStatus.FILLED


# --------------------------------------------------------------------------- money


def test_fifty_concurrent_orders_on_one_account_never_overdraw_it(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice, balance=Decimal(5_000))
    bot = desk.bot(alice)
    desk.market("60000")
    messages = [
        desk.intent_message(alice, account, bot, quantity="0.003", leg=f"entry-{i}") for i in range(50)
    ]
    executor = desk.executor()

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(executor.handle, messages))

    filled = [r for r in results if r.status is OrderStatus.FILLED]
    rejected = [desk.order(alice, r.order_id) for r in results if r.status is OrderStatus.REJECTED]
    assert len(filled) + len(rejected) == 50
    assert all(o.reject_code is RejectCode.INSUFFICIENT_BALANCE for o in rejected)
    assert desk.balance(alice, account, "USDT") >= 0
    assert desk.balance(alice, account, "BTC") == Decimal("0.003") * len(filled)
    # Each fill cost 0.003 * 60030 plus 0.1 % fee: as many as 5000 USDT can pay for.
    assert len(filled) == int(Decimal(5_000) / (Decimal("0.003") * Decimal("60030") * Decimal("1.001")))
    desk.assert_ledger_consistent(alice, account)


def test_a_halted_account_with_twenty_queued_orders_places_none(
    desk: Desk, live: Live, fake: FakeBinance, aws_settings: Any
) -> None:
    queue = fifo_queue(aws_settings)
    queue.queue.send(
        [desk.intent_message(live.user, live.account, live.bot, leg=f"entry-{i}") for i in range(20)]
    )
    with desk.database.connection() as conn, tenant_transaction(conn, live.user):
        account_rows.set_trading_state(
            conn, live.user, live.account.id, TradingState.HALTED, "daily loss limit"
        )
    poller = SqsPoller(queue.sqs, queue.url, handler_for(desk, queue))

    while queue.depth():
        poller.poll_once()

    orders = desk.orders(live.user, live.account)
    assert len(orders) == 20
    assert fake.create_requests == []
    assert {(o.status, o.reject_code) for o in orders} == {(OrderStatus.REJECTED, RejectCode.TRADING_HALTED)}
    assert all("daily loss limit" in (o.reason or "") for o in orders)
    desk.assert_ledger_consistent(live.user, live.account)


def test_the_platform_halt_is_honoured_at_execution_time(desk: Desk) -> None:
    from tekoa.db.connection import service_transaction

    alice = desk.user()
    account = desk.paper_account(alice)
    desk.market("60000")
    with desk.database.connection() as conn, service_transaction(conn):
        account_rows.set_platform_trading_state(conn, TradingState.HALTED, "maintenance")
    try:
        result = desk.executor().handle(desk.intent_message(alice, account, desk.bot(alice)))
    finally:
        with desk.database.connection() as conn, service_transaction(conn):
            account_rows.set_platform_trading_state(conn, TradingState.ACTIVE, None)

    assert desk.order(alice, result.order_id).reject_code is RejectCode.TRADING_HALTED
