"""A market's precision and limits, and the rounding and validation every order goes through.

Pure (no ccxt): the API validates manual orders with the rules stored in `market_rules`, the
executor rounds bot orders with the same code. Steps are tick sizes (`Decimal("0.01")`).

Rounding never makes an order worse for its owner: quantities round down (never more than
asked), buy prices down and sell prices up (never a worse limit), stop triggers toward the
market side that keeps them from firing early.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal

from tekoa.domain.execution import OrderRefused, RejectCode
from tekoa.domain.orders import OrderSide, OrderType


@dataclass(frozen=True, slots=True)
class MarketRules:
    """What an exchange accepts for one market."""

    exchange: str
    symbol: str
    base: str
    quote: str
    amount_step: Decimal
    price_step: Decimal
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_notional: Decimal | None = None
    max_notional: Decimal | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class CheckedOrder:
    """An order's numbers on the market's grid, within its limits."""

    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None


# Enough digits that dividing any order number by any step is exact: quantities and prices
# are at most 30 digits (the API's limit), steps at most 30.
_EXACT = Context(prec=100)


def to_step(value: Decimal, step: Decimal, *, up: bool) -> Decimal:
    """`value` on the grid of `step`, rounded up or down (exactly, whatever the magnitudes)."""
    units = _EXACT.divide(value, step).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return _EXACT.multiply(units, step) if units else Decimal(0)


def on_step(value: Decimal, step: Decimal) -> bool:
    return _EXACT.remainder(value, step) == 0


def check_order(
    rules: MarketRules,
    *,
    side: OrderSide,
    type: OrderType,
    quantity: Decimal,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    reference_price: Decimal | None,
    strict: bool,
) -> CheckedOrder:
    """Round (or with `strict`, require) the order's numbers on the market's grid, then check
    the limits. `reference_price` values a market order for the notional check.

    Raises OrderRefused(INVALID_ORDER) naming the field and the limit it broke.
    """
    if not rules.active:
        raise _invalid(f"{rules.symbol} is not trading on {rules.exchange}", "symbol")
    for name, value in (("quantity", quantity), ("limit_price", limit_price), ("stop_price", stop_price)):
        if value is not None and not (value.is_finite() and value > 0):
            raise _invalid(f"{name} must be a positive number", name)
    if strict:
        _require_step(quantity, rules.amount_step, "quantity")
        _require_step(limit_price, rules.price_step, "limit_price")
        _require_step(stop_price, rules.price_step, "stop_price")
    buy = side is OrderSide.BUY
    quantity = to_step(quantity, rules.amount_step, up=False)
    if quantity == 0:
        raise _invalid(
            f"quantity is below the market's precision ({_text(rules.amount_step)} {rules.base})", "quantity"
        )
    limit = None if limit_price is None else to_step(limit_price, rules.price_step, up=not buy)
    # A buy stop fires when the price rises to it: rounding it up never fires it early.
    stop = None if stop_price is None else to_step(stop_price, rules.price_step, up=buy)
    _within(quantity, rules.min_amount, rules.max_amount, "quantity", rules.base)
    for name, price in (("limit_price", limit), ("stop_price", stop)):
        if price is not None:
            if price == 0:
                raise _invalid(f"{name} is below the market's tick ({_text(rules.price_step)})", name)
            _within(price, rules.min_price, rules.max_price, name, rules.quote)
    valued_at = limit if type is OrderType.LIMIT else (stop if type is OrderType.STOP else reference_price)
    if valued_at is not None:
        _within(
            quantity * valued_at, rules.min_notional, rules.max_notional, "quantity", rules.quote, "notional"
        )
    return CheckedOrder(quantity=quantity, limit_price=limit, stop_price=stop)


def _require_step(value: Decimal | None, step: Decimal, field: str) -> None:
    if value is not None and not on_step(value, step):
        raise _invalid(f"{field} must be a multiple of {_text(step)} on this market", field)


def _within(
    value: Decimal, low: Decimal | None, high: Decimal | None, field: str, unit: str, what: str | None = None
) -> None:
    label = what or field
    if low is not None and value < low:
        raise _invalid(f"{label} {_text(value)} is below the market's minimum of {_text(low)} {unit}", field)
    if high is not None and value > high:
        raise _invalid(f"{label} {_text(value)} is above the market's maximum of {_text(high)} {unit}", field)


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _invalid(message: str, field: str) -> OrderRefused:
    return OrderRefused(RejectCode.INVALID_ORDER, message, field=field)
