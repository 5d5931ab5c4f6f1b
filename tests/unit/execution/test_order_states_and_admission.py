"""The order status table, and the checks that admit an order and size its hold."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest

from tekoa.domain.bots import TradingMode
from tekoa.domain.execution import (
    FINAL_STATUSES,
    ORDER_TRANSITIONS,
    Account,
    IllegalOrderTransition,
    OrderAction,
    OrderRefused,
    OrderStatus,
    RejectCode,
    TradingState,
    order_transition,
)
from tekoa.domain.orders import OrderSide, OrderType
from tekoa.exchanges.rules import CheckedOrder
from tekoa.exchanges.simulated import simulated_rules
from tekoa.execution.admission import CostModel, admit

D = Decimal


def test_a_final_order_has_no_way_out() -> None:
    for status in FINAL_STATUSES:
        for action in OrderAction:
            with pytest.raises(IllegalOrderTransition):
                order_transition(status, action)


def test_an_exchange_never_rejects_an_order_it_accepted() -> None:
    for status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED):
        assert (status, OrderAction.REJECT) not in ORDER_TRANSITIONS
    assert (
        order_transition(OrderStatus.PARTIALLY_FILLED, OrderAction.PARTIAL_FILL)
        is OrderStatus.PARTIALLY_FILLED
    )
    assert order_transition(OrderStatus.NEW, OrderAction.SUBMIT) is OrderStatus.SUBMITTED


def account(state: TradingState = TradingState.ACTIVE, mode: TradingMode = TradingMode.PAPER) -> Account:
    now = datetime.now(UTC)
    return Account(
        id=uuid4(),
        exchange="simulated",
        mode=mode,
        quote_currency="USDT",
        starting_balance=D(10000) if mode is TradingMode.PAPER else None,
        credential_id=None,
        trading_state=state,
        trading_state_reason="daily loss limit" if state is not TradingState.ACTIVE else None,
        resets=0,
        created_at=now,
        updated_at=now,
    )


def admitted(  # type: ignore[no-untyped-def]
    side: OrderSide = OrderSide.BUY,
    type: OrderType = OrderType.MARKET,
    quantity: str = "0.1",
    price: str | None = None,
    *,
    on: Account | None = None,
    platform: TradingState = TradingState.ACTIVE,
    position: str = "0",
    pending: str = "0",
    available: str = "10000",
    reduce_only: bool = False,
):
    return admit(
        account=on or account(),
        platform_state=platform,
        rules=simulated_rules("BTC/USDT"),
        side=side,
        type=type,
        order=CheckedOrder(
            D(quantity),
            D(price) if type is OrderType.LIMIT and price else None,
            D(price) if type is OrderType.STOP and price else None,
        ),
        reduce_only=reduce_only,
        reference_price=D(60000),
        position_quantity=D(position),
        pending_sells=D(pending),
        available=D(available),
        costs=CostModel(),
    )


def test_a_limit_buy_holds_its_value_and_the_larger_fee() -> None:
    hold = admitted(type=OrderType.LIMIT, price="59000")
    assert (hold.asset, hold.amount) == ("USDT", D("5905.90000000"))


def test_a_market_buy_holds_for_the_worst_price_slippage_allows() -> None:
    # 0.1 * (60000 * 1.0005 + one tick 0.01) * 1.001
    assert admitted().amount == D("6009.00400100")


def test_a_sell_holds_its_quantity_of_base_and_never_more_than_the_position() -> None:
    assert (
        admitted(OrderSide.SELL, position="0.1").asset,
        admitted(OrderSide.SELL, position="0.1").amount,
    ) == (
        "BTC",
        D("0.1"),
    )
    with pytest.raises(OrderRefused) as refused:
        admitted(OrderSide.SELL, position="0.15", pending="0.1")
    assert refused.value.reject_code is RejectCode.NO_POSITION


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"on": account(TradingState.HALTED)}, RejectCode.TRADING_HALTED),
        ({"platform": TradingState.HALTED}, RejectCode.TRADING_HALTED),
        ({"on": account(TradingState.REDUCING)}, RejectCode.REDUCE_ONLY),
        ({"reduce_only": True}, RejectCode.REDUCE_ONLY),
        ({"available": "100"}, RejectCode.INSUFFICIENT_BALANCE),
        ({"on": account(mode=TradingMode.LIVE)}, RejectCode.NO_CREDENTIAL),
    ],
)
def test_refusals_say_why(kwargs: dict, code: RejectCode) -> None:
    with pytest.raises(OrderRefused) as refused:
        admitted(**kwargs)
    assert refused.value.reject_code is code


def test_a_reducing_account_still_sells() -> None:
    assert admitted(OrderSide.SELL, on=account(TradingState.REDUCING), position="1").asset == "BTC"
