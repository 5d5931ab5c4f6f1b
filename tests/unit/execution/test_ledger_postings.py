"""Ledger postings balance by construction, whatever the fill."""

from __future__ import annotations

from decimal import Decimal

import hypothesis.strategies as st
import pytest
from hypothesis import given

from tekoa.domain.orders import OrderSide
from tekoa.execution import ledger
from tekoa.execution.ledger import Book, Entry, Posting, PostingKind, UnbalancedPosting

amounts = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(10**9), places=8)
fees = st.decimals(min_value=Decimal(0), max_value=Decimal(1000), places=8)


def sums(posting: Posting) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for entry in posting.entries:
        totals[entry.asset] = totals.get(entry.asset, Decimal(0)) + entry.amount
    return totals


@given(
    side=st.sampled_from(list(OrderSide)),
    quantity=amounts,
    price=amounts,
    fee=fees,
    fee_currency=st.sampled_from(["USDT", "BTC", "BNB"]),
    held=st.decimals(min_value=Decimal(0), max_value=Decimal(10**12), places=8),
)
def test_every_fill_posting_balances_and_pays_from_the_hold_first(
    side: OrderSide, quantity: Decimal, price: Decimal, fee: Decimal, fee_currency: str, held: Decimal
) -> None:
    result = ledger.fill(
        side=side,
        base="BTC",
        quote="USDT",
        quantity=quantity,
        price=price,
        fee=fee,
        fee_currency=fee_currency,
        held=held,
    )

    assert all(total == 0 for total in sums(result.posting).values())
    assert result.from_hold <= held
    assert result.from_hold + result.from_available >= (
        quantity * price if side is OrderSide.BUY else quantity
    )
    paid = "USDT" if side is OrderSide.BUY else "BTC"
    assert result.posting.change(paid, Book.HELD) == -result.from_hold


def test_a_buy_moves_quote_to_the_market_and_base_to_the_account() -> None:
    result = ledger.fill(
        side=OrderSide.BUY,
        base="BTC",
        quote="USDT",
        quantity=Decimal("0.1"),
        price=Decimal(60000),
        fee=Decimal(6),
        fee_currency="USDT",
        held=Decimal(7000),
    )

    assert result.posting.change("USDT", Book.HELD) == Decimal(-6006)
    assert result.posting.change("USDT", Book.MARKET) == Decimal(6000)
    assert result.posting.change("USDT", Book.FEES) == Decimal(6)
    assert result.posting.change("BTC", Book.AVAILABLE) == Decimal("0.1")
    assert (result.from_hold, result.from_available) == (Decimal(6006), Decimal(0))


def test_a_sell_pays_its_fee_from_what_it_receives() -> None:
    result = ledger.fill(
        side=OrderSide.SELL,
        base="BTC",
        quote="USDT",
        quantity=Decimal("0.1"),
        price=Decimal(60000),
        fee=Decimal(6),
        fee_currency="USDT",
        held=Decimal("0.1"),
    )

    assert result.posting.change("USDT", Book.AVAILABLE) == Decimal(5994)
    assert result.posting.change("BTC", Book.HELD) == Decimal("-0.1")


def test_hold_and_release_undo_each_other() -> None:
    both = Posting.of(
        PostingKind.ADJUSTMENT,
        [*ledger.hold("USDT", Decimal(5)).entries, *ledger.release("USDT", Decimal(5)).entries],
    )

    assert both.empty


def test_a_reset_returns_every_spendable_amount_and_pays_in_the_starting_balance() -> None:
    books = {
        ("USDT", Book.AVAILABLE): Decimal("8123.4"),
        ("BTC", Book.AVAILABLE): Decimal("0.03"),
        ("USDT", Book.MARKET): Decimal("1870"),
        ("USDT", Book.CAPITAL): Decimal(-10000),
    }

    posting = ledger.reset(books, "USDT", Decimal(5000))

    assert posting.change("USDT", Book.AVAILABLE) == Decimal(5000) - Decimal("8123.4")
    assert posting.change("BTC", Book.AVAILABLE) == Decimal("-0.03")
    assert posting.change("USDT", Book.MARKET) == 0


def test_an_unbalanced_posting_is_refused() -> None:
    with pytest.raises(UnbalancedPosting):
        Posting.of(PostingKind.ADJUSTMENT, [Entry("USDT", Book.AVAILABLE, Decimal(1))])


@pytest.mark.parametrize("amount", [Decimal(0), Decimal(-1)])
def test_holds_and_deposits_must_be_positive(amount: Decimal) -> None:
    with pytest.raises(ValueError, match="positive"):
        ledger.hold("USDT", amount)
    with pytest.raises(ValueError, match="positive"):
        ledger.deposit("USDT", amount)
