"""What fills do to a position: average entry, realised P&L net of fees, no short selling."""

from __future__ import annotations

from decimal import Decimal

import hypothesis.strategies as st
import pytest
from hypothesis import given

from tekoa.domain.orders import OrderSide
from tekoa.execution.positions import ExceedsPosition, apply_fill, fee_in_quote

D = Decimal


def test_buys_average_their_entry_prices() -> None:
    holding = apply_fill(None, OrderSide.BUY, D(1), D(100), D(0))
    holding = apply_fill(holding, OrderSide.BUY, D(3), D(200), D(0))

    assert (holding.quantity, holding.average_entry, holding.entry_quantity) == (D(4), D(175), D(4))


def test_a_sell_realises_the_difference_to_the_average_entry_less_every_fee() -> None:
    holding = apply_fill(None, OrderSide.BUY, D(2), D(100), D("0.2"))
    holding = apply_fill(holding, OrderSide.SELL, D(2), D(110), D("0.22"))

    assert holding.flat
    assert holding.realized_pnl == D(20) - D("0.42")
    assert (holding.fees, holding.average_exit) == (D("0.42"), D(110))


def test_selling_more_than_the_position_is_refused() -> None:
    holding = apply_fill(None, OrderSide.BUY, D(1), D(100), D(0))

    with pytest.raises(ExceedsPosition):
        apply_fill(holding, OrderSide.SELL, D(2), D(100), D(0))
    with pytest.raises(ExceedsPosition):
        apply_fill(None, OrderSide.SELL, D(1), D(100), D(0))


@given(
    fills=st.lists(
        st.tuples(st.integers(1, 100), st.integers(1, 10_000), st.integers(0, 100)), min_size=1, max_size=8
    ),
    exit_price=st.integers(1, 10_000),
)
def test_a_round_trip_realises_exactly_what_the_cash_says(
    fills: list[tuple[int, int, int]], exit_price: int
) -> None:
    holding = None
    cash = D(0)
    for quantity, price, fee in fills:
        holding = apply_fill(holding, OrderSide.BUY, D(quantity), D(price), D(fee) / 100)
        cash -= D(quantity) * D(price) + D(fee) / 100
    assert holding is not None
    exit_fee = D("1.5")
    closed = apply_fill(holding, OrderSide.SELL, holding.quantity, D(exit_price), exit_fee)
    cash += holding.quantity * D(exit_price) - exit_fee

    assert closed.flat
    assert abs(closed.realized_pnl - cash) < D("1e-20")


def test_fees_are_valued_in_quote_currency() -> None:
    assert fee_in_quote(D("0.001"), "BTC", base="BTC", quote="USDT", price=D(60000)) == D(60)
    assert fee_in_quote(D(6), "USDT", base="BTC", quote="USDT", price=D(60000)) == D(6)
    assert fee_in_quote(D(1), "BNB", base="BTC", quote="USDT", price=D(60000)) == D(0)
