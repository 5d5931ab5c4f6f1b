"""The double-entry ledger's postings, as pure values (no I/O).

Every movement of money is a `Posting`: entries into the books of one account whose amounts
sum to zero per asset. The books of each (account, asset) are:

    available  spendable (never negative)
    held       reserved for open orders (never negative)
    capital    the owner's side of deposits and resets
    market     the counterparty of trades
    fees       fees paid

So a buy of 0.1 BTC at 60 000 USDT with a 6 USDT fee, funded by its hold, is

    USDT held -6006, market +6000, fees +6      BTC available +0.1, market -0.1

and the account's balances are the sums of its entries per book (`tekoa.db.ledger` stores
the sums from the same statement that stores the entries).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal
from enum import StrEnum

from tekoa.domain.orders import OrderSide

EXACT = Context(prec=100)
"""Arithmetic that never rounds amounts the ledger books (the default context keeps 28 digits)."""


class Book(StrEnum):
    AVAILABLE = "available"
    HELD = "held"
    CAPITAL = "capital"
    MARKET = "market"
    FEES = "fees"


SPENDABLE_BOOKS = (Book.AVAILABLE, Book.HELD)


class PostingKind(StrEnum):
    DEPOSIT = "deposit"
    HOLD = "hold"
    RELEASE = "release"
    FILL = "fill"
    RESET = "reset"
    ADJUSTMENT = "adjustment"


class UnbalancedPosting(ValueError):
    """A posting whose entries do not sum to zero for some asset."""


@dataclass(frozen=True, slots=True)
class Entry:
    asset: str
    book: Book
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Posting:
    """Balanced entries of one account; entries of the same (asset, book) are merged, zeros dropped."""

    kind: PostingKind
    entries: tuple[Entry, ...]

    @classmethod
    def of(cls, kind: PostingKind, entries: Iterable[Entry]) -> Posting:
        merged: dict[tuple[str, Book], Decimal] = defaultdict(Decimal)
        for entry in entries:
            merged[(entry.asset, entry.book)] += entry.amount
        kept = tuple(Entry(asset, book, amount) for (asset, book), amount in merged.items() if amount != 0)
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for entry in kept:
            sums[entry.asset] += entry.amount
        unbalanced = {asset: total for asset, total in sums.items() if total != 0}
        if unbalanced:
            raise UnbalancedPosting(f"{kind} posting does not balance: {unbalanced}")
        return cls(kind, kept)

    def change(self, asset: str, book: Book) -> Decimal:
        """How much this posting moves `book` of `asset`."""
        return sum((e.amount for e in self.entries if e.asset == asset and e.book is book), Decimal(0))

    @property
    def empty(self) -> bool:
        return not self.entries


def deposit(asset: str, amount: Decimal) -> Posting:
    """Capital paid in: `amount` becomes available."""
    _positive(amount)
    return Posting.of(
        PostingKind.DEPOSIT, [Entry(asset, Book.AVAILABLE, amount), Entry(asset, Book.CAPITAL, -amount)]
    )


def hold(asset: str, amount: Decimal) -> Posting:
    """Reserve `amount` for an order: available → held."""
    _positive(amount)
    return Posting.of(
        PostingKind.HOLD, [Entry(asset, Book.AVAILABLE, -amount), Entry(asset, Book.HELD, amount)]
    )


def release(asset: str, amount: Decimal) -> Posting:
    """Give back what an order no longer needs: held → available."""
    _positive(amount)
    return Posting.of(
        PostingKind.RELEASE, [Entry(asset, Book.HELD, -amount), Entry(asset, Book.AVAILABLE, amount)]
    )


@dataclass(frozen=True, slots=True)
class FillPosting:
    """A fill's posting and how much of the order's hold it consumed."""

    posting: Posting
    from_hold: Decimal
    from_available: Decimal
    """What the fill took from the available book beyond the hold (the caller checks it exists)."""


def fill(
    *,
    side: OrderSide,
    base: str,
    quote: str,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal,
    fee_currency: str,
    held: Decimal,
) -> FillPosting:
    """The posting of one execution, paid from the order's remaining hold `held` first.

    A buy pays `quantity * price` (and a fee in quote) in quote currency and receives base; a
    sell gives base and receives quote, its fee taken from what it receives. A fee in any other
    currency comes from that currency's available book.
    """
    _positive(quantity)
    _positive(price)
    if fee < 0:
        raise ValueError("fee must not be negative")
    value = EXACT.multiply(quantity, price)  # a value booked is exact, whatever its digits
    paid_asset, owed = (quote, value) if side is OrderSide.BUY else (base, quantity)
    if side is OrderSide.BUY and fee_currency == quote:
        owed += fee
    from_hold = min(owed, held)
    from_available = owed - from_hold
    entries = [
        Entry(paid_asset, Book.HELD, -from_hold),
        Entry(paid_asset, Book.AVAILABLE, -from_available),
    ]
    if side is OrderSide.BUY:
        entries += [
            Entry(quote, Book.MARKET, value),
            Entry(base, Book.AVAILABLE, quantity),
            Entry(base, Book.MARKET, -quantity),
        ]
        if fee_currency != quote:
            entries.append(Entry(fee_currency, Book.AVAILABLE, -fee))
    else:
        entries += [
            Entry(base, Book.MARKET, quantity),
            Entry(quote, Book.AVAILABLE, value),
            Entry(quote, Book.MARKET, -value),
            Entry(fee_currency, Book.AVAILABLE, -fee),
        ]
    entries.append(Entry(fee_currency, Book.FEES, fee))
    return FillPosting(Posting.of(PostingKind.FILL, entries), from_hold, from_available)


def reset(balances: Mapping[tuple[str, Book], Decimal], quote: str, starting_balance: Decimal) -> Posting:
    """Return every spendable amount to capital, then pay in `starting_balance` of `quote`.

    `balances` are the account's current books; holds must already have been released.
    """
    _positive(starting_balance)
    entries = []
    for (asset, book), amount in balances.items():
        if book in SPENDABLE_BOOKS and amount != 0:
            entries += [Entry(asset, book, -amount), Entry(asset, Book.CAPITAL, amount)]
    entries += [Entry(quote, Book.AVAILABLE, starting_balance), Entry(quote, Book.CAPITAL, -starting_balance)]
    return Posting.of(PostingKind.RESET, entries)


def adjustment(asset: str, difference: Decimal) -> Posting:
    """Bring the available book in line with what the exchange reports (live reconciliation)."""
    return Posting.of(
        PostingKind.ADJUSTMENT,
        [Entry(asset, Book.AVAILABLE, difference), Entry(asset, Book.CAPITAL, -difference)],
    )


def _positive(amount: Decimal) -> None:
    if not amount > 0:
        raise ValueError(f"amount must be positive, got {amount}")
