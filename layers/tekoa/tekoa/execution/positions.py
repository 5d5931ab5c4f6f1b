"""Position arithmetic (pure): what a fill does to a position.

Spot, long only. A buy adds to the position at a quantity-weighted average entry; a sell
reduces it, realising `quantity * (price - average_entry)`. Fees are costs of the position:
every fee (entry and exit, converted to quote currency) is subtracted from the realised P&L,
so a closed position's `realized_pnl` is the round trip's net result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from tekoa.domain.orders import OrderSide

ZERO = Decimal(0)


class ExceedsPosition(ValueError):
    """A sell of more than the position holds (Tekoa never sells short)."""


@dataclass(frozen=True, slots=True)
class Holding:
    """The numbers of a position."""

    quantity: Decimal
    average_entry: Decimal
    entry_quantity: Decimal
    exit_quantity: Decimal = ZERO
    exit_value: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO

    @property
    def flat(self) -> bool:
        return self.quantity == 0

    @property
    def average_exit(self) -> Decimal | None:
        return self.exit_value / self.exit_quantity if self.exit_quantity else None

    def unrealized_pnl(self, price: Decimal) -> Decimal:
        """What closing the rest at `price` would realise before exit fees."""
        return self.quantity * (price - self.average_entry)


def apply_fill(
    holding: Holding | None, side: OrderSide, quantity: Decimal, price: Decimal, fee_in_quote: Decimal
) -> Holding:
    """The position after one fill; `holding` None opens a new one (buys only)."""
    if quantity <= 0 or price <= 0 or fee_in_quote < 0:
        raise ValueError("a fill needs a positive quantity and price and a non-negative fee")
    if side is OrderSide.BUY:
        if holding is None or holding.flat:
            return Holding(
                quantity=quantity,
                average_entry=price,
                entry_quantity=quantity,
                realized_pnl=-fee_in_quote,
                fees=fee_in_quote,
            )
        total = holding.quantity + quantity
        return replace(
            holding,
            quantity=total,
            average_entry=(holding.quantity * holding.average_entry + quantity * price) / total,
            entry_quantity=holding.entry_quantity + quantity,
            realized_pnl=holding.realized_pnl - fee_in_quote,
            fees=holding.fees + fee_in_quote,
        )
    if holding is None or quantity > holding.quantity:
        held = ZERO if holding is None else holding.quantity
        raise ExceedsPosition(f"cannot sell {quantity}: the position holds {held}")
    return replace(
        holding,
        quantity=holding.quantity - quantity,
        exit_quantity=holding.exit_quantity + quantity,
        exit_value=holding.exit_value + quantity * price,
        realized_pnl=holding.realized_pnl + quantity * (price - holding.average_entry) - fee_in_quote,
        fees=holding.fees + fee_in_quote,
    )


def fee_in_quote(fee: Decimal, fee_currency: str, *, base: str, quote: str, price: Decimal) -> Decimal:
    """A fee valued in quote currency; a third currency's fee (e.g. BNB) is not priced here (0)."""
    if fee_currency == quote:
        return fee
    if fee_currency == base:
        return fee * price
    return ZERO
