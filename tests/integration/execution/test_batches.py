"""A batch is carried out as a batch: new orders of different accounts are claimed, checked
and booked in one transaction, yet each record succeeds or fails alone, an account's records
keep their order and see each other's effects, and nothing is placed twice. Real PostgreSQL,
real SQS on moto."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import psycopg

from functions.executor.handler import ExecutorHandler
from tekoa.db import markets as market_rows
from tekoa.db.connection import service_transaction
from tekoa.domain.execution import OrderStatus, RejectCode
from tekoa.domain.orders import OrderSide, OrderType
from tekoa.exchanges.simulated import simulated_rules
from tekoa.execution.executor import MessageNotApplicable, Outcome, Result
from tekoa.execution.ledger import Book
from tests.integration.execution.desk import Desk
from tests.integration.execution.queues import fifo_queue


def test_a_batch_of_ten_where_two_fail_admission_books_the_other_eight(desk: Desk, aws_settings: Any) -> None:
    queue = fifo_queue(aws_settings)
    desk.market("60000")
    traders = []
    for n in range(10):
        user = desk.user()
        # Records 3 and 7 ask for more than their accounts have.
        account = desk.paper_account(user, balance=Decimal(10 if n in (3, 7) else 10_000))
        traders.append((user, account))
    queue.queue.send([desk.intent_message(u, a, desk.bot(u), quantity="0.001") for u, a in traders])
    event = queue.receive_event()
    assert len(event["Records"]) == 10

    response = ExecutorHandler(desk.executor())(event, None)

    assert response["batchItemFailures"] == []
    for n, (user, account) in enumerate(traders):
        (order,) = desk.orders(user, account)
        if n in (3, 7):
            assert (order.status, order.reject_code) == (
                OrderStatus.REJECTED,
                RejectCode.INSUFFICIENT_BALANCE,
            )
            assert desk.balance(user, account, "USDT") == 10
        else:
            assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, Decimal("0.001"))
        desk.assert_ledger_consistent(user, account)


def test_records_that_cannot_apply_fail_alone_and_the_rest_are_booked(desk: Desk, aws_settings: Any) -> None:
    queue = fifo_queue(aws_settings)
    desk.market("60000")
    messages, traders = [], []
    for n in range(10):
        user = desk.user()
        account = desk.paper_account(user)
        # Records 3 and 7 name a bot of another user: they can never apply.
        bot = desk.bot(desk.user()) if n in (3, 7) else desk.bot(user)
        messages.append(desk.intent_message(user, account, bot, quantity="0.001"))
        traders.append((user, account))
    queue.queue.send(messages)
    event = queue.receive_event()
    bad = {r["messageId"] for n, r in enumerate(event["Records"]) if n in (3, 7)}

    response = ExecutorHandler(desk.executor())(event, None)

    assert {item["itemIdentifier"] for item in response["batchItemFailures"]} == bad
    for n, (user, account) in enumerate(traders):
        orders = desk.orders(user, account)
        assert [o.status for o in orders] == ([] if n in (3, 7) else [OrderStatus.FILLED])


def test_an_order_that_fits_only_if_the_previous_hold_is_ignored_is_refused(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice, balance=Decimal(1_000))
    bot = desk.bot(alice)
    desk.market("60000")
    # A resting limit buy holds 0.01 * 59000 * 1.001 = 590.59; the second needs 600.9 more.
    first = desk.intent_message(
        alice, account, bot, type=OrderType.LIMIT, quantity="0.01", price="59000", leg="entry-1"
    )
    second = desk.intent_message(alice, account, bot, quantity="0.01", leg="entry-2")

    outcomes = desk.executor().handle_batch([first, second])

    assert [o.outcome for o in outcomes if isinstance(o, Result)] == [Outcome.OPEN, Outcome.REJECTED]
    refused = desk.order(alice, outcomes[1].order_id)  # type: ignore[union-attr]
    assert refused.reject_code is RejectCode.INSUFFICIENT_BALANCE
    assert desk.balance(alice, account, "USDT", Book.HELD) == Decimal("590.59")
    assert desk.balance(alice, account, "USDT") == Decimal(1_000) - Decimal("590.59")
    desk.assert_ledger_consistent(alice, account)


def test_an_accounts_records_see_each_other_in_order(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000")
    buy = desk.intent_message(alice, account, bot, quantity="0.01", leg="entry")
    sell = desk.intent_message(alice, account, bot, side=OrderSide.SELL, quantity="0.01", leg="exit")
    bob = desk.user()
    others = desk.paper_account(bob)

    outcomes = desk.executor().handle_batch(
        [buy, desk.intent_message(bob, others, desk.bot(bob), quantity="0.01"), sell]
    )

    assert [o.outcome for o in outcomes if isinstance(o, Result)] == [Outcome.FILLED] * 3
    assert desk.balance(alice, account, "BTC") == 0
    desk.assert_ledger_consistent(alice, account)
    desk.assert_ledger_consistent(bob, others)


def test_a_duplicate_client_order_id_in_one_batch_places_once(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000")
    message = desk.intent_message(alice, account, bot, quantity="0.01")
    again = message.model_copy(update={"enqueued_at": message.enqueued_at + 1})

    outcomes = desk.executor().handle_batch([message, again])

    assert [o.outcome for o in outcomes if isinstance(o, Result)] == [Outcome.FILLED, Outcome.DUPLICATE]
    (order,) = desk.orders(alice, account)
    assert order.filled_quantity == Decimal("0.01")
    assert desk.balance(alice, account, "BTC") == Decimal("0.01")
    desk.assert_ledger_consistent(alice, account)


def test_a_record_that_can_never_apply_does_not_hold_its_accounts_later_records_back(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000")
    unknown = desk.intent_message(alice, account, bot, symbol="DOGE/BTC", leg="odd")
    later = desk.intent_message(alice, account, bot, quantity="0.01", leg="entry")

    outcomes = desk.executor().handle_batch([unknown, later])

    # A bot that does not trade the symbol can never apply: it does not hold the next one back.
    assert isinstance(outcomes[0], MessageNotApplicable)
    assert isinstance(outcomes[1], Result) and outcomes[1].outcome is Outcome.FILLED


def test_a_record_the_database_refuses_fails_alone_and_leaves_nothing_behind(desk: Desk) -> None:
    desk.market("60000")
    desk.market("3000", symbol="ETH/USDT")
    # Rules whose base asset the ledger refuses (its CHECK on asset names): the order passes
    # every check in Python and fails only when the round's writes reach the database.
    with desk.database.connection() as conn, service_transaction(conn):
        market_rows.upsert_rules(conn, [dataclasses.replace(simulated_rules("ETH/USDT"), base="eth!")])
    traders = [(user, desk.paper_account(user)) for user in (desk.user(), desk.user(), desk.user())]
    symbols = ["BTC/USDT", "ETH/USDT", "BTC/USDT"]
    messages = [
        desk.intent_message(user, account, desk.bot(user, symbol), quantity="0.01", symbol=symbol)
        for (user, account), symbol in zip(traders, symbols, strict=True)
    ]

    outcomes = desk.executor().handle_batch(messages)

    assert isinstance(outcomes[1], psycopg.errors.CheckViolation)
    assert [o.outcome for o in (outcomes[0], outcomes[2]) if isinstance(o, Result)] == [Outcome.FILLED] * 2
    (user, account) = traders[1]
    assert desk.orders(user, account) == []
    assert desk.balance(user, account, "USDT", Book.HELD) == 0
    for user, account in traders:
        desk.assert_ledger_consistent(user, account)
