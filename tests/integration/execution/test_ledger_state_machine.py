"""A hypothesis state machine over place / partial fill / fill / cancel / reset, on real
PostgreSQL: after every step the ledger's invariants hold — the entries sum to every stored
balance, every posting balances, held and available are never negative, the held books equal
what working orders hold, and the base currency held equals what the fills delivered."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any
from uuid import UUID

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from tekoa.db import orders as order_rows
from tekoa.db.connection import tenant_transaction
from tekoa.db.order_context import load_order_context
from tekoa.domain.execution import OrderStatus
from tekoa.domain.orders import OrderType
from tekoa.exchanges.simulated import simulated_rules
from tekoa.execution import booking
from tekoa.execution.accounts import reset_paper_account
from tekoa.execution.executor import Executor
from tekoa.execution.ledger import Book
from tekoa.execution.messages import CancelMessage
from tekoa.execution.writes import Writes
from tests.integration.execution.desk import Desk, now_ms

RULES = simulated_rules("BTC/USDT")
_legs = itertools.count()

quantities = st.integers(min_value=1, max_value=40).map(lambda n: Decimal(n) / 1000)  # 0.001-0.04 BTC
prices = st.integers(min_value=50_000, max_value=59_900).map(Decimal)  # resting buys below 60 000
fractions = st.sampled_from([Decimal("0.25"), Decimal("0.5"), Decimal("0.75")])


def run_machine(desk: Desk) -> None:
    class Ledger(RuleBasedStateMachine):
        resting = Bundle("resting")

        def __init__(self) -> None:
            super().__init__()
            self.user = desk.user()
            self.account = desk.paper_account(self.user, balance=Decimal(5_000))
            self.bot = desk.bot(self.user)
            self.executor: Executor = desk.executor()
            self.btc_bought = Decimal(0)
            desk.market("60000")

        def _place(self, type: OrderType, quantity: Decimal, price: Decimal | None) -> Any:
            message = desk.intent_message(
                self.user,
                self.account,
                self.bot,
                type=type,
                quantity=str(quantity),
                price=None if price is None else str(price),
                leg=f"leg-{next(_legs)}",
            )
            result = self.executor.handle(message)
            if result.status is OrderStatus.FILLED:
                self.btc_bought += quantity
            return result

        @rule(target=resting, quantity=quantities, price=prices)
        def place_limit_buy(self, quantity: Decimal, price: Decimal) -> Any:
            result = self._place(OrderType.LIMIT, quantity, price)
            return result.order_id if result.status is OrderStatus.OPEN else None

        @rule(quantity=quantities)
        def place_market_buy(self, quantity: Decimal) -> None:
            self._place(OrderType.MARKET, quantity, None)

        @rule(order_id=resting, fraction=fractions)
        def partial_fill(self, order_id: UUID | None, fraction: Decimal) -> None:
            self._fill(order_id, fraction)

        @rule(order_id=consumes(resting))
        def fill(self, order_id: UUID | None) -> None:
            self._fill(order_id, None)

        def _fill(self, order_id: UUID | None, fraction: Decimal | None) -> None:
            if order_id is None:
                return
            with desk.database.connection() as conn, tenant_transaction(conn, self.user):
                context = load_order_context(conn, self.user, self.account.id, order_id=order_id)
                assert context is not None and context.order is not None
                account, order = context.account, context.order
                if order.status not in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
                    return
                quantity = (
                    order.remaining
                    if fraction is None
                    else (order.remaining * fraction).quantize(RULES.amount_step)
                )
                if quantity <= 0:
                    return
                assert order.limit_price is not None
                fee = (quantity * order.limit_price * Decimal("0.001")).quantize(Decimal("1e-8"))
                writes = Writes()
                booked = booking.book_fill(
                    writes,
                    self.user,
                    account,
                    order,
                    RULES,
                    order_rows.NewFill(
                        f"t{next(_legs)}", quantity, order.limit_price, fee, "USDT", "maker", now_ms()
                    ),
                    position=context.position,
                    booked_trade_ids=set(context.booked_trade_ids),
                    available=context.available,
                )
                writes.flush(conn)
                assert not booked.duplicate
            self.btc_bought += quantity

        @rule(order_id=consumes(resting))
        def cancel(self, order_id: UUID | None) -> None:
            if order_id is None:
                return
            order = desk.order(self.user, order_id)
            self.executor.handle(
                CancelMessage(
                    user_id=self.user,
                    account_id=self.account.id,
                    target_client_order_id=order.client_order_id,
                    enqueued_at=now_ms(),
                )
            )
            assert desk.order(self.user, order_id).status.final

        @rule()
        def reset(self) -> None:
            with desk.database.connection() as conn, tenant_transaction(conn, self.user):
                reset_paper_account(conn, self.user, self.account.id)
            self.btc_bought = Decimal(0)

        @invariant()
        def books_hold(self) -> None:
            desk.assert_ledger_consistent(self.user, self.account)

        @invariant()
        def base_equals_what_fills_delivered(self) -> None:
            assert desk.balance(self.user, self.account, "BTC") == self.btc_bought
            assert desk.balance(self.user, self.account, "BTC", Book.HELD) == 0

    Ledger.TestCase.settings = settings(
        max_examples=20,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    Ledger.TestCase().runTest()


def test_the_ledger_invariants_hold_through_any_sequence_of_orders(desk: Desk) -> None:
    run_machine(desk)
