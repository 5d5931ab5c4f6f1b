"""The executor on paper accounts, against real PostgreSQL: fills at the last trade, resting
limits, rejections with reasons, and the ledger after each."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from tekoa.domain.execution import Order, OrderStatus, RejectCode
from tekoa.domain.orders import OrderSide, OrderType, ProtectionSpec, StopSpec, TargetSpec
from tekoa.execution.executor import Outcome
from tekoa.execution.ledger import Book
from tekoa.execution.messages import CancelMessage, TriggerMessage
from tests.integration.execution.desk import Desk, now_ms


def test_a_paper_market_buy_fills_at_the_last_trade_with_slippage_and_fee(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000")

    result = desk.executor().handle(desk.intent_message(alice, account, bot, quantity="0.01"))

    assert result.outcome is Outcome.FILLED
    order = desk.order(alice, result.order_id)
    # 60000 * (1 + 0.05 % slippage) = 60030; fee 0.1 % of 600.30.
    assert (order.status, order.filled_quantity, order.average_price) == (
        OrderStatus.FILLED,
        Decimal("0.01"),
        Decimal("60030.00"),
    )
    assert order.fees == {"USDT": Decimal("0.60030000")}
    assert desk.balance(alice, account, "BTC") == Decimal("0.01")
    assert desk.balance(alice, account, "USDT") == Decimal(10_000) - Decimal("600.30") - Decimal("0.6003")
    assert desk.balance(alice, account, "USDT", Book.HELD) == 0
    desk.assert_ledger_consistent(alice, account)


def test_the_same_intent_twice_is_one_order_and_one_debit(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000")
    message = desk.intent_message(alice, account, bot)

    first = desk.executor().handle(message)
    second = desk.executor().handle(message)

    assert (first.outcome, second.outcome) == (Outcome.FILLED, Outcome.DUPLICATE)
    assert first.order_id == second.order_id
    assert len(desk.orders(alice, account)) == 1
    assert desk.balance(alice, account, "BTC") == Decimal("0.01")
    desk.assert_ledger_consistent(alice, account)


def test_a_limit_below_the_market_rests_and_holds_its_funds(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000")

    result = desk.executor().handle(
        desk.intent_message(alice, account, bot, type=OrderType.LIMIT, quantity="0.1", price="59000")
    )

    assert result.outcome is Outcome.OPEN
    order = desk.order(alice, result.order_id)
    # 0.1 * 59000 plus the larger fee (0.1 %).
    assert (order.held_asset, order.held_amount) == ("USDT", Decimal("5905.90000000"))
    assert desk.balance(alice, account, "USDT", Book.HELD) == Decimal("5905.9")
    desk.assert_ledger_consistent(alice, account)


def test_a_buy_the_account_cannot_fund_is_rejected_with_the_reason(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice, balance=Decimal(100))
    bot = desk.bot(alice)
    desk.market("60000")

    result = desk.executor().handle(desk.intent_message(alice, account, bot, quantity="0.01"))

    order = desk.order(alice, result.order_id)
    assert (result.outcome, order.reject_code) == (Outcome.REJECTED, RejectCode.INSUFFICIENT_BALANCE)
    assert "100" in (order.reason or "")
    assert desk.balance(alice, account, "USDT") == Decimal(100)
    desk.assert_ledger_consistent(alice, account)


def test_a_market_order_on_a_stale_price_is_rejected(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000", at_ms=desk.clock[0] - 120_000)

    result = desk.executor().handle(desk.intent_message(alice, account, bot))

    order = desk.order(alice, result.order_id)
    assert (order.status, order.reject_code) == (OrderStatus.REJECTED, RejectCode.STALE_PRICE)
    desk.assert_ledger_consistent(alice, account)


def test_a_sell_beyond_the_bots_position_is_refused(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000")
    desk.executor().handle(desk.intent_message(alice, account, bot, quantity="0.01"))

    result = desk.executor().handle(
        desk.intent_message(alice, account, bot, side=OrderSide.SELL, quantity="0.02", leg="exit")
    )

    assert desk.order(alice, result.order_id).reject_code is RejectCode.NO_POSITION
    desk.assert_ledger_consistent(alice, account)


def test_a_round_trip_closes_the_position_with_its_net_pnl(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000")
    desk.executor().handle(desk.intent_message(alice, account, bot, quantity="0.01"))
    desk.market("61000")

    result = desk.executor().handle(
        desk.intent_message(alice, account, bot, side=OrderSide.SELL, quantity="0.01", leg="exit")
    )

    sell = desk.order(alice, result.order_id)
    assert sell.status is OrderStatus.FILLED
    # Sold at 61000 * (1 - 0.05 %) = 60969.50; bought at 60030.
    assert sell.average_price == Decimal("60969.50")
    assert desk.balance(alice, account, "BTC") == 0
    expected = (
        Decimal(10_000) - Decimal("600.30") - Decimal("0.6003") + Decimal("609.695") - Decimal("0.60969500")
    )
    assert desk.balance(alice, account, "USDT") == expected
    desk.assert_ledger_consistent(alice, account)


def test_a_resting_limit_fills_at_its_price_when_a_trade_reaches_it(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000")
    executor = desk.executor()
    placed = executor.handle(
        desk.intent_message(alice, account, bot, type=OrderType.LIMIT, quantity="0.1", price="59000")
    )
    order = desk.order(alice, placed.order_id)

    above = executor.handle(trigger(alice, order, "59000.01", trade_id="1"))
    reached = executor.handle(trigger(alice, order, "58990", trade_id="2"))
    again = executor.handle(trigger(alice, order, "58000", trade_id="3"))

    assert (above.outcome, reached.outcome, again.outcome) == (
        Outcome.IGNORED,
        Outcome.FILLED,
        Outcome.IGNORED,
    )
    filled = desk.order(alice, order.id)
    # A resting limit fills at its own price, as a maker.
    assert (filled.average_price, filled.fees) == (Decimal("59000"), {"USDT": Decimal("5.90000000")})
    assert desk.balance(alice, account, "USDT") == Decimal(10_000) - Decimal(5900) - Decimal("5.9")
    assert desk.balance(alice, account, "USDT", Book.HELD) == 0
    desk.assert_ledger_consistent(alice, account)


def test_a_canceled_order_gives_its_hold_back(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000")
    executor = desk.executor()
    placed = executor.handle(
        desk.intent_message(alice, account, bot, type=OrderType.LIMIT, quantity="0.1", price="59000")
    )
    order = desk.order(alice, placed.order_id)

    result = executor.handle(
        CancelMessage(
            user_id=alice,
            account_id=account.id,
            target_client_order_id=order.client_order_id,
            reason="grid re-armed",
            enqueued_at=desk.clock[0],
        )
    )

    canceled = desk.order(alice, order.id)
    assert (result.outcome, canceled.status, canceled.reason) == (
        Outcome.CANCELED,
        OrderStatus.CANCELED,
        "grid re-armed",
    )
    assert desk.balance(alice, account, "USDT") == Decimal(10_000)
    desk.assert_ledger_consistent(alice, account)


def test_an_entry_arms_the_protection_the_bot_attached(desk: Desk) -> None:
    alice = desk.user()
    account = desk.paper_account(alice)
    bot = desk.bot(alice)
    desk.market("60000")
    message = desk.intent_message(alice, account, bot, quantity="0.01")
    protection = ProtectionSpec(
        stop=StopSpec(kind="percent", value=Decimal(2)),
        targets=(TargetSpec(kind="percent", value=Decimal(3), size_fraction=Decimal("0.5")),),
    )
    message = message.model_copy(
        update={"intent": message.intent.model_copy(update={"protection": protection})}
    )

    result = desk.executor().handle(message)

    position = desk.position(alice, desk.order(alice, result.order_id).position_id)
    assert position.protection is not None
    assert position.protection.entry_price == Decimal("60030.00")
    assert position.protection.stop == Decimal("58829.4")  # 2 % below the fill
    assert [t.price for t in position.protection.targets] == [Decimal("61830.9")]


def trigger(user_id: UUID, order: Order, price: str, *, trade_id: str) -> TriggerMessage:
    return TriggerMessage(
        user_id=user_id,
        account_id=order.account_id,
        order_id=order.id,
        client_order_id=order.client_order_id,
        trade_id=trade_id,
        trade_time=now_ms(),
        price=Decimal(price),
        enqueued_at=now_ms(),
    )
