"""Pre-trade checks: pure functions from an intent and what is known about its bot, its user
and its market to a verdict — approved, resized or rejected, with the reason.

The evaluator runs them on every intent before it leaves, with facts read from the database in
the same tick; the executor checks the trading states again when the order executes (fail
closed). In order, for an order to place:

1. **Trading state** (the stricter of the platform's and the user's): halted refuses
   everything; reducing refuses what does not reduce a position.
2. **Order rate**: at most `max_orders_per_minute` orders per bot in any minute.
3. **Price sanity**: a market order decided on a close further than `max_price_deviation_pct`
   from the last trade, or a limit/stop that would execute that far through the market, is
   refused (the data or the order is wrong).
4. **Open positions**: an entry that would open a position when the user already holds
   `max_open_positions` (across all bots and exchanges) is refused.
5. **Sizing** (entries): the quantity is cut so that a loss at the stop costs at most
   `risk_per_trade_pct` of equity (no stop: the whole notional is at risk), and so that the
   bot's position stays within `max_position_notional`.
6. **Minimum notional**: what is left must be worth the market's minimum order.

Cancels always pass: withdrawing an order never adds risk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Context, Decimal
from enum import StrEnum

from tekoa.domain.bots import RiskSettings
from tekoa.domain.execution import TradingState
from tekoa.domain.orders import CancelIntent, Intent, OrderIntent, OrderSide, OrderType, ProtectionSpec
from tekoa.risk.limits import RiskLimits

ZERO = Decimal(0)
HUNDRED = Decimal(100)
_DOWN = Context(prec=16, rounding=ROUND_FLOOR)
"""Quantities the checks compute are rounded down (never more than a limit allows)."""


class Verdict(StrEnum):
    APPROVED = "approved"
    RESIZED = "resized"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Checked:
    """One intent after the checks: `intent` is the resized one when `verdict` says so."""

    intent: Intent
    verdict: Verdict
    reason: str | None = None

    @property
    def passed(self) -> bool:
        return self.verdict is not Verdict.REJECTED


@dataclass(frozen=True, slots=True)
class RiskContext:
    """What the checks know about one bot's decision."""

    state: TradingState
    state_reason: str | None
    limits: RiskLimits
    settings: RiskSettings
    equity: Decimal
    """The bot's account equity (what risk per trade is a share of)."""
    reference_price: Decimal
    """The price the decision was made at (the closed candle's close)."""
    last_price: Decimal | None
    """The market's last trade, if one is known."""
    min_notional: Decimal | None
    position_quantity: Decimal = ZERO
    orders_last_minute: int = 0
    user_open_positions: int = 0


def risk_budget(equity: Decimal, risk_pct: Decimal) -> Decimal:
    """Quote currency a trade may lose at its stop."""
    return max(ZERO, equity) * risk_pct / HUNDRED


def stop_distance(protection: ProtectionSpec | None, side: OrderSide, price: Decimal) -> Decimal:
    """Loss per unit if the entry's stop is hit, from `price`: the whole price without a stop
    (or with one on the wrong side of the price, which protects nothing)."""
    stop = None if protection is None else protection.stop
    if stop is None:
        return price
    if stop.kind == "price":
        distance = (price - stop.value) if side is OrderSide.BUY else (stop.value - price)
        return distance if distance > 0 else price
    if stop.kind == "distance":
        return stop.value
    return price * stop.value / HUNDRED


def max_quantity_at_risk(budget: Decimal, distance: Decimal) -> Decimal:
    """The largest quantity whose loss over `distance` stays within `budget` (rounded down)."""
    if distance <= 0 or budget <= 0:
        return ZERO
    return _DOWN.divide(budget, distance)


def check_intents(intents: Sequence[Intent], context: RiskContext) -> list[Checked]:
    """Every intent of one decision through the checks, in order (see the module doc)."""
    out: list[Checked] = []
    placed = 0
    pending_buy = ZERO
    for intent in intents:
        if isinstance(intent, CancelIntent):
            out.append(Checked(intent, Verdict.APPROVED))
            continue
        checked = _check_place(intent, context, placed, pending_buy)
        if checked.passed:
            placed += 1
            order = checked.intent
            assert isinstance(order, OrderIntent)
            if order.side is OrderSide.BUY and not order.reduce_only:
                pending_buy += order.quantity
        out.append(checked)
    return out


def _check_place(intent: OrderIntent, context: RiskContext, placed: int, pending_buy: Decimal) -> Checked:
    def reject(reason: str) -> Checked:
        return Checked(intent, Verdict.REJECTED, reason)

    state = context.state
    suffix = f": {context.state_reason}" if context.state_reason else ""
    if state is TradingState.HALTED:
        return reject(f"trading is halted{suffix}")
    if state is TradingState.REDUCING and not intent.reduce_only:
        return reject(f"exits only{suffix}")
    limits = context.limits
    if context.orders_last_minute + placed >= limits.max_orders_per_minute:
        return reject(f"order rate: at most {limits.max_orders_per_minute} orders per minute per bot")
    price = intent.price if intent.price is not None else context.reference_price
    deviation = _deviation(intent, context)
    if deviation is not None:
        return reject(deviation)
    quantity = intent.quantity
    why: list[str] = []
    if not intent.reduce_only:
        if context.position_quantity == 0 and context.user_open_positions >= limits.max_open_positions:
            return reject(
                f"{context.user_open_positions} positions open: the limit is {limits.max_open_positions}"
            )
        settings = context.settings
        by_risk = max_quantity_at_risk(
            risk_budget(context.equity, settings.risk_per_trade_pct),
            stop_distance(intent.protection, intent.side, price),
        )
        held = context.position_quantity + pending_buy
        by_notional = max(ZERO, _DOWN.divide(settings.max_position_notional, price) - held)
        if by_risk < quantity:
            quantity = by_risk
            why.append(f"sized to risk {settings.risk_per_trade_pct} % of equity at the stop")
        if by_notional < quantity:
            quantity = by_notional
            why.append(f"capped at the bot's largest position ({settings.max_position_notional})")
        if quantity <= 0:
            return reject("; ".join(why) or "nothing left to trade")
    if context.min_notional is not None and quantity * price < context.min_notional:
        return reject(
            f"order value {_text(quantity * price)} is below the market's minimum of"
            f" {_text(context.min_notional)}" + (f" ({'; '.join(why)})" if why else "")
        )
    if quantity == intent.quantity:
        return Checked(intent, Verdict.APPROVED)
    return Checked(intent.model_copy(update={"quantity": quantity}), Verdict.RESIZED, "; ".join(why))


def _deviation(intent: OrderIntent, context: RiskContext) -> str | None:
    """Why the order's price is not sane against the last trade, or None."""
    last = context.last_price
    if last is None or last <= 0:
        return None
    band = context.limits.max_price_deviation_pct / HUNDRED
    if intent.type is OrderType.MARKET:
        if intent.reduce_only:
            return None  # an exit must never be trapped by a price check
        moved = abs(context.reference_price - last) / last
        if moved > band:
            return (
                f"the market moved {_pct(moved)} % from the decision's close"
                f" ({_text(context.reference_price)})"
                f" to the last trade ({_text(last)})"
            )
        return None
    assert intent.price is not None
    buy = intent.side is OrderSide.BUY
    # A limit executes toward the market; a stop fires once the market reaches it. Either is
    # harmless away from the market and dangerous beyond it.
    through = (
        (intent.price - last) / last
        if buy == (intent.type is OrderType.LIMIT)
        else (last - intent.price) / last
    )
    if through > band:
        return (
            f"{intent.type.value} price {_text(intent.price)} is {_pct(through)} % through the last trade"
            f" ({_text(last)})"
        )
    return None


def _pct(fraction: Decimal) -> str:
    return _text((fraction * HUNDRED).quantize(Decimal("0.01")))


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def data_problem(
    *,
    candle_close_ms: int | None,
    now_ms: int,
    max_candle_age_ms: int,
    market_fresh: bool | None,
    market_reason: str | None,
) -> str | None:
    """Why a market's data may not be decided on (the stale-data guard), or None when it may:
    no candle, a candle that closed too long ago, or a feed the market stream marks stale."""
    if candle_close_ms is None:
        return "no candle for this period: the market has no data"
    age = now_ms - candle_close_ms
    if age > max_candle_age_ms:
        return f"stale data: the candle closed {age // 1000} s ago"
    if market_fresh is False:
        return f"stale data: {market_reason or 'the market feed is not fresh'}"
    return None
