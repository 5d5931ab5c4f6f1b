"""Market rules round orders toward their owner and refuse what the exchange would; the
capability table turns our client ids into ids each venue accepts."""

from __future__ import annotations

import re
from decimal import Decimal

import hypothesis.strategies as st
import pytest
from hypothesis import given

from tekoa.domain.execution import OrderRefused, RejectCode
from tekoa.domain.orders import CLIENT_ORDER_ID_PATTERN, OrderSide, OrderType
from tekoa.exchanges.capabilities import CAPABILITIES, DEFAULT_CAPABILITIES, capabilities
from tekoa.exchanges.rules import check_order
from tekoa.exchanges.simulated import simulated_rules

RULES = simulated_rules("BTC/USDT")  # tick 0.01, lot 0.00001, minimum notional 5 USDT
D = Decimal


def checked(
    side: OrderSide, type: OrderType, quantity: str, price: str | None = None, *, strict: bool = False
):  # type: ignore[no-untyped-def]
    return check_order(
        RULES,
        side=side,
        type=type,
        quantity=D(quantity),
        limit_price=D(price) if price and type is OrderType.LIMIT else None,
        stop_price=D(price) if price and type is OrderType.STOP else None,
        reference_price=D(60000),
        strict=strict,
    )


def test_rounding_never_makes_an_order_worse_for_its_owner() -> None:
    buy = checked(OrderSide.BUY, OrderType.LIMIT, "0.123456789", "59999.999")
    sell = checked(OrderSide.SELL, OrderType.LIMIT, "0.123456789", "60000.001")
    buy_stop = checked(OrderSide.BUY, OrderType.STOP, "0.001", "60000.001")

    assert (buy.quantity, buy.limit_price) == (D("0.12345"), D("59999.99"))
    assert sell.limit_price == D("60000.01")
    assert buy_stop.stop_price == D("60000.01")


@pytest.mark.parametrize(
    ("quantity", "price", "field", "words"),
    [
        ("0.000001", None, "quantity", "precision"),
        ("0.00001", None, "quantity", "minimum of 5"),
        ("0.0001", "100", "quantity", "notional"),
    ],
)
def test_orders_below_the_markets_minimums_are_refused_naming_the_field(
    quantity: str, price: str | None, field: str, words: str
) -> None:
    type = OrderType.LIMIT if price else OrderType.MARKET
    with pytest.raises(OrderRefused) as refused:
        checked(OrderSide.BUY, type, quantity, price)

    assert (refused.value.reject_code, refused.value.field) == (RejectCode.INVALID_ORDER, field)
    assert words in refused.value.message


def test_strict_checks_refuse_numbers_off_the_grid_instead_of_rounding() -> None:
    with pytest.raises(OrderRefused, match=r"multiple of 0\.00001") as refused:
        checked(OrderSide.BUY, OrderType.MARKET, "0.0012345", strict=True)
    assert refused.value.field == "quantity"
    with pytest.raises(OrderRefused, match=r"multiple of 0\.01"):
        checked(OrderSide.BUY, OrderType.LIMIT, "0.001", "60000.005", strict=True)


@given(
    quantity=st.decimals(min_value=D("1e-18"), max_value=D("1e12"), allow_nan=False, allow_infinity=False),
    price=st.decimals(min_value=D("1e-18"), max_value=D("1e12"), allow_nan=False, allow_infinity=False),
)
def test_any_order_is_either_on_the_grid_and_within_limits_or_refused(
    quantity: Decimal, price: Decimal
) -> None:
    refusal = None
    try:
        result = check_order(
            RULES,
            side=OrderSide.BUY,
            type=OrderType.LIMIT,
            quantity=quantity,
            limit_price=price,
            stop_price=None,
            reference_price=None,
            strict=False,
        )
    except OrderRefused as refused:
        refusal = refused
    if refusal is not None:
        assert refusal.reject_code is RejectCode.INVALID_ORDER
        return
    assert result.quantity % RULES.amount_step == 0 and result.quantity <= quantity
    assert result.limit_price is not None and result.limit_price % RULES.price_step == 0
    assert result.quantity * result.limit_price >= D(5)


@given(client_order_id=st.from_regex(CLIENT_ORDER_ID_PATTERN, fullmatch=True))
def test_every_venue_gets_a_stable_client_id_it_accepts(client_order_id: str) -> None:
    for caps in [*CAPABILITIES.values(), DEFAULT_CAPABILITIES]:
        mapped = caps.exchange_client_id(client_order_id)

        assert mapped == caps.exchange_client_id(client_order_id)
        assert len(mapped) <= caps.client_order_id_max_length
        assert re.fullmatch(f"{caps.client_order_id_alphabet}+", mapped)


def test_binance_keeps_our_ids_and_knows_its_duplicate_answer() -> None:
    binance = capabilities("binance")

    assert (
        binance.exchange_client_id("tk0123456789abcdef0123456789abcdef")
        == "tk0123456789abcdef0123456789abcdef"
    )
    assert binance.is_duplicate_client_id('binance {"code":-2010,"msg":"Duplicate order sent."}')
    assert capabilities("someexchange") is DEFAULT_CAPABILITIES
