"""Whether an order may go out, and what it must hold: pure checks on data the caller read
under the account's lock.

Used by the executor (a bot's intent that fails becomes a `rejected` order with the reason)
and by the API (a manual order that fails is a 4xx and is not stored). Imports no fill model,
so the API's import graph stays slim.

Holds are sized so a fill can never need more than was held: a buy holds its value at the
worst price it can fill at (its limit; for market and stop orders the reference price plus the
slippage allowance and one tick) plus the larger fee; a sell holds its quantity.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from tekoa.domain.bots import TradingMode
from tekoa.domain.execution import Account, OrderRefused, RejectCode, TradingState
from tekoa.domain.orders import OrderSide, OrderType
from tekoa.domain.symbols import is_derivative
from tekoa.exchanges.rules import CheckedOrder, MarketRules, check_order
from tekoa.settings import Settings

HOLD_PRECISION = Decimal("1e-8")
"""Holds and fees are kept to 8 decimals of their currency, rounded up."""


@dataclass(frozen=True, slots=True)
class CostModel:
    """Fees and slippage as fractions, and how stale a price may be (paper trading and holds)."""

    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    slippage: Decimal = Decimal("0.0005")
    market_buffer: Decimal = Decimal("0.02")
    """Live market and stop buys hold this much above the reference price: the exchange, not
    the model, decides the fill price."""
    price_max_age_ms: int = 30_000

    @classmethod
    def from_settings(cls, settings: Settings) -> CostModel:
        hundred = Decimal(100)
        return cls(
            maker_fee=settings.paper_maker_fee_pct / hundred,
            taker_fee=settings.paper_taker_fee_pct / hundred,
            slippage=settings.paper_slippage_pct / hundred,
            market_buffer=settings.live_market_buffer_pct / hundred,
            price_max_age_ms=int(settings.price_max_age_s * 1000),
        )


@dataclass(frozen=True, slots=True)
class OrderAsk:
    """An order as asked for, before it meets the market's grid."""

    side: OrderSide
    type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    reduce_only: bool


@dataclass(frozen=True, slots=True)
class Admission:
    """What an admitted order holds."""

    asset: str
    amount: Decimal


def normalise(
    rules: MarketRules | None, ask: OrderAsk, *, reference_price: Decimal | None, strict: bool
) -> CheckedOrder:
    """The order on the market's grid and within its limits (OrderRefused INVALID_ORDER otherwise).

    `strict` (manual orders) refuses numbers off the grid instead of rounding them.
    """
    if rules is None:
        raise OrderRefused(
            RejectCode.INVALID_ORDER, "unknown symbol: Tekoa has no rules for this market", field="symbol"
        )
    if is_derivative(rules.symbol):
        raise OrderRefused(
            RejectCode.INVALID_ORDER, "derivatives are not traded yet: use a spot symbol", field="symbol"
        )
    if ask.type is OrderType.LIMIT and ask.limit_price is None:
        raise OrderRefused(RejectCode.INVALID_ORDER, "a limit order needs limit_price", field="limit_price")
    if ask.type is OrderType.STOP and ask.stop_price is None:
        raise OrderRefused(RejectCode.INVALID_ORDER, "a stop order needs stop_price", field="stop_price")
    return check_order(
        rules,
        side=ask.side,
        type=ask.type,
        quantity=ask.quantity,
        limit_price=ask.limit_price if ask.type is OrderType.LIMIT else None,
        stop_price=ask.stop_price if ask.type is OrderType.STOP else None,
        reference_price=reference_price,
        strict=strict,
    )


def fresh_price(
    price: Decimal | None, trade_time: int | None, now_ms: int, costs: CostModel
) -> Decimal | None:
    """The last trade price if it is recent enough to trade on, else None."""
    if price is None or trade_time is None or now_ms - trade_time > costs.price_max_age_ms:
        return None
    return price


FLATTEN_SOURCE = "flatten"
"""The source of the kill switch's exits: reduce-only market sells of open positions, the only
orders a halted account accepts (a platform halt stops them too)."""


def halt_lets_through(source: str | None, side: OrderSide, type: OrderType, reduce_only: bool) -> bool:
    """Whether an order passes the user's own halt: the kill switch's flattening sells only."""
    return source == FLATTEN_SOURCE and side is OrderSide.SELL and type is OrderType.MARKET and reduce_only


def admit(
    *,
    account: Account,
    platform_state: TradingState,
    rules: MarketRules,
    side: OrderSide,
    type: OrderType,
    order: CheckedOrder,
    reduce_only: bool,
    reference_price: Decimal | None,
    position_quantity: Decimal,
    pending_sells: Decimal,
    available: Decimal,
    costs: CostModel,
    source: str | None = None,
) -> Admission:
    """Check an order against the trading states, its position and the balance; what it holds.

    `position_quantity` is the open position the order belongs to (the bot's, or the account's
    manual position), `pending_sells` what working sells of that position already promise.
    """
    reduces = side is OrderSide.SELL
    account_state = account.trading_state
    if account_state is TradingState.HALTED and halt_lets_through(source, side, type, reduce_only):
        account_state = TradingState.REDUCING
    state = _stricter(platform_state, account_state)
    if state is TradingState.HALTED:
        reason = "trading is halted" + (
            f": {account.trading_state_reason}" if account.trading_state_reason else ""
        )
        raise OrderRefused(RejectCode.TRADING_HALTED, reason)
    if state is TradingState.REDUCING and not reduces:
        raise OrderRefused(RejectCode.REDUCE_ONLY, "the account only reduces positions now; buys are refused")
    if reduce_only and not reduces:
        raise OrderRefused(
            RejectCode.REDUCE_ONLY, "a reduce-only buy cannot reduce a long position", field="side"
        )
    if account.mode is TradingMode.LIVE and account.credential_id is None:
        raise OrderRefused(RejectCode.NO_CREDENTIAL, "the live account has no broker credential")
    if reduces and order.quantity > position_quantity - pending_sells:
        free = max(position_quantity - pending_sells, Decimal(0))
        raise OrderRefused(
            RejectCode.NO_POSITION,
            f"cannot sell {order.quantity} {rules.base}: the position has {free} left to sell (no short"
            " selling)",
            field="quantity",
        )
    if reduces:
        need, asset = order.quantity, rules.base
    else:
        need, asset = (
            order.quantity * _worst_buy_price(type, order, reference_price, rules, account, costs),
            rules.quote,
        )
        need *= 1 + max(costs.maker_fee, costs.taker_fee)
    need = need.quantize(HOLD_PRECISION, rounding=ROUND_CEILING)
    if need > available:
        raise OrderRefused(
            RejectCode.INSUFFICIENT_BALANCE,
            f"the order needs {_text(need)} {asset}; {_text(available)} {asset} is available",
            field="quantity",
        )
    return Admission(asset=asset, amount=need)


def _worst_buy_price(
    type: OrderType,
    order: CheckedOrder,
    reference_price: Decimal | None,
    rules: MarketRules,
    account: Account,
    costs: CostModel,
) -> Decimal:
    if type is OrderType.LIMIT:
        assert order.limit_price is not None
        return order.limit_price
    base = order.stop_price if type is OrderType.STOP else reference_price
    if type is OrderType.STOP and reference_price is not None and order.stop_price is not None:
        base = max(order.stop_price, reference_price)  # a stop already through fills at the market
    if base is None:
        raise OrderRefused(RejectCode.STALE_PRICE, "no recent price for this market; try again shortly")
    allowance = costs.market_buffer if account.mode is TradingMode.LIVE else costs.slippage
    return base * (1 + allowance) + rules.price_step


def _stricter(a: TradingState, b: TradingState) -> TradingState:
    order = (TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED)
    return max(a, b, key=order.index)


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")
