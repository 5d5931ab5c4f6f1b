"""Brokers: where an order executes.

* `PaperBroker` (the default) fills orders with the engine's fill model
  (`tekoa.execution.fills`) against the market's own prices: the last trade when an order
  arrives, a trade or a stored candle while it rests. The model computes in float64; fills are
  booked as Decimal on the market's grid at this edge (`booked_price`, `booked_quantity`,
  `booked_fee`), so a paper account and a backtest over the same prices agree.
* `CcxtBroker` (live accounts) sends orders through ccxt with our client order id and never
  retries a create blindly: after a timeout or an unknown outcome it looks the order up by
  client id, and a venue's "duplicate client order id" answer means "find the existing order".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from tekoa.db.orders import NewFill
from tekoa.domain.candles import decimal_from_float
from tekoa.domain.execution import Order
from tekoa.domain.orders import OrderSide, OrderType
from tekoa.exchanges.capabilities import ExchangeCapabilities
from tekoa.exchanges.rules import MarketRules
from tekoa.execution.admission import HOLD_PRECISION, CostModel
from tekoa.execution.fills import (
    Costs,
    Execution,
    booked_fee,
    booked_price,
    booked_quantity,
    fill_on_candle,
    fill_on_trade,
)
from tekoa.observability import logger

# ------------------------------------------------------------------------------------ paper


class PaperBroker:
    """Fills paper orders with the engine's fill model; quantities are always the whole rest."""

    def __init__(self, costs: CostModel) -> None:
        self.costs = Costs(
            maker_fee=float(costs.maker_fee), taker_fee=float(costs.taker_fee), slippage=float(costs.slippage)
        )

    def on_arrival(self, order: Order, rules: MarketRules, price: Decimal, time_ms: int) -> NewFill | None:
        """An order just admitted meets the last trade: market orders fill, a marketable limit
        fills as a taker, a stop already through fills; anything else rests (None)."""
        execution = fill_on_trade(
            order.side,
            order.type,
            _level(order),
            float(price),
            float(order.remaining),
            self.costs,
            arriving=True,
        )
        return self._booked(order, rules, execution, f"paper-arrival-{time_ms}", time_ms)

    def on_trade(
        self, order: Order, rules: MarketRules, price: Decimal, time_ms: int, trade_id: str
    ) -> NewFill | None:
        """A resting order meets a trade of the market stream; None when the trade does not reach it."""
        execution = fill_on_trade(
            order.side,
            order.type,
            _level(order),
            float(price),
            float(order.remaining),
            self.costs,
            arriving=False,
        )
        return self._booked(order, rules, execution, f"paper-trade-{trade_id}", time_ms)

    def on_candle(
        self,
        order: Order,
        rules: MarketRules,
        candle: tuple[Decimal, Decimal, Decimal, Decimal],
        open_time: int,
    ) -> NewFill | None:
        """A resting order meets a stored candle (the sweep); None when its path does not reach it."""
        ohlc = (float(candle[0]), float(candle[1]), float(candle[2]), float(candle[3]))
        execution = fill_on_candle(
            order.side, order.type, _level(order), ohlc, float(order.remaining), self.costs, arriving=False
        )
        return self._booked(order, rules, execution, f"paper-candle-{open_time}", open_time)

    @staticmethod
    def _booked(
        order: Order, rules: MarketRules, execution: Execution | None, trade_id: str, time_ms: int
    ) -> NewFill | None:
        if execution is None:
            return None
        quantity = booked_quantity(order.remaining, rules.amount_step)
        if quantity != order.remaining:  # admission put it on the grid; the model must not move it
            raise ValueError(f"order {order.id} quantity {order.remaining} is off the amount grid")
        return NewFill(
            trade_id=trade_id,
            quantity=quantity,
            price=booked_price(execution.price, rules.price_step, order.side),
            fee=booked_fee(execution.fee, HOLD_PRECISION),
            fee_currency=rules.quote,
            liquidity="maker" if execution.maker else "taker",
            executed_at=time_ms,
        )


def _level(order: Order) -> float | None:
    if order.type is OrderType.LIMIT:
        assert order.limit_price is not None
        return float(order.limit_price)
    if order.type is OrderType.STOP:
        assert order.stop_price is not None
        return float(order.stop_price)
    return None


# ------------------------------------------------------------------------------------- live


class ExchangeStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ExchangeOrder:
    """An order as the exchange reports it, with every execution it reported."""

    exchange_order_id: str
    client_order_id: str | None
    status: ExchangeStatus
    filled: Decimal
    average_price: Decimal | None
    trades: tuple[NewFill, ...] = ()
    symbol: str | None = None


class ExchangeRejected(Exception):
    """The exchange refused the order; it was not placed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ExchangeUnavailable(Exception):
    """The exchange could not be asked (network, outage, rate limit): try again later.

    After a create, the order's fate is unknown until a look-up finds it or proves it absent.
    """


class LiveBroker(Protocol):
    """An exchange account that places, finds and cancels orders by our client order id."""

    def place(self, order: Order) -> ExchangeOrder: ...

    def lookup(self, order: Order) -> ExchangeOrder | None:
        """The order as the exchange knows it; None when the exchange has no such order."""
        ...

    def cancel(self, order: Order) -> ExchangeOrder | None:
        """Cancel it; the order as it ended up (filled meanwhile, canceled), None when unknown."""
        ...

    def open_orders(self, symbols: Sequence[str]) -> list[ExchangeOrder]: ...

    def balances(self) -> dict[str, Decimal]:
        """Total (free + in orders) per asset."""
        ...

    def last_price(self, symbol: str) -> Decimal:
        """The market's last traded price, asked of the exchange."""
        ...


@dataclass
class CcxtBroker:
    """`LiveBroker` on a ccxt client (one client per credential, markets loaded once)."""

    client: Any
    exchange: str
    capabilities: ExchangeCapabilities
    lookup_attempts: int = 3
    lookup_delay_s: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep)

    def place(self, order: Order) -> ExchangeOrder:
        import ccxt

        params: dict[str, Any] = {self.capabilities.client_order_id_param: self._client_id(order)}
        price: float | None = None
        kind = "market"
        if order.type is OrderType.LIMIT:
            kind, price = "limit", float(order.limit_price or 0)
        elif order.type is OrderType.STOP:
            if not self.capabilities.native_stop_orders:
                raise ExchangeRejected(f"{self.exchange} has no native stop orders")
            # ccxt's unified stop-loss parameter (createStopLossOrder): Binance spot STOP_LOSS.
            params["stopLossPrice"] = float(order.stop_price or 0)
        try:
            raw = self.client.create_order(
                order.symbol, kind, order.side.value, float(order.quantity), price, params
            )
        except ccxt.DuplicateOrderId:
            return self._existing(order, "duplicate client order id")
        except (ccxt.RequestTimeout, ccxt.NetworkError) as exc:
            # Sent, maybe accepted: the answer is lost, not the order. Find it; never resend.
            logger.warning(
                "order create outcome unknown; looking it up",
                extra={"client_order_id": order.client_order_id, "error_type": type(exc).__name__},
            )
            return self._existing(order, f"create failed with {type(exc).__name__}")
        except ccxt.BaseError as exc:
            if self.capabilities.is_duplicate_client_id(str(exc)):
                return self._existing(order, "duplicate client order id")
            if isinstance(exc, ccxt.ExchangeNotAvailable | ccxt.RateLimitExceeded | ccxt.OnMaintenance):
                raise ExchangeUnavailable(f"{self.exchange} is unavailable: {type(exc).__name__}") from None
            raise ExchangeRejected(_reason(exc)) from None
        return self._with_trades(self._parse(raw), order.symbol)

    def lookup(self, order: Order) -> ExchangeOrder | None:
        import ccxt

        try:
            if self.capabilities.fetch_order_by_client_id:
                raw = self.client.fetch_order(
                    None, order.symbol, {self.capabilities.lookup_param: self._client_id(order)}
                )
                return self._with_trades(self._parse(raw), order.symbol)
            wanted = self._client_id(order)
            since = int(order.created_at.timestamp() * 1000) - 60_000
            for raw in [
                *self.client.fetch_open_orders(order.symbol),
                *self.client.fetch_closed_orders(order.symbol, since),
            ]:
                if raw.get("clientOrderId") == wanted:
                    return self._with_trades(self._parse(raw), order.symbol)
            return None
        except ccxt.OrderNotFound:
            return None
        except ccxt.BaseError as exc:
            raise ExchangeUnavailable(f"looking up the order failed: {type(exc).__name__}") from None

    def cancel(self, order: Order) -> ExchangeOrder | None:
        import ccxt

        try:
            self.client.cancel_order(
                order.exchange_order_id,
                order.symbol,
                {} if order.exchange_order_id else {self.capabilities.lookup_param: self._client_id(order)},
            )
        except ccxt.OrderNotFound:
            pass  # filled or canceled meanwhile, or never placed: the look-up says which
        except ccxt.BaseError as exc:
            raise ExchangeUnavailable(f"canceling the order failed: {type(exc).__name__}") from None
        return self.lookup(order)

    def open_orders(self, symbols: Sequence[str]) -> list[ExchangeOrder]:
        import ccxt

        found = []
        try:
            for symbol in symbols:
                found += [self._parse(raw) for raw in self.client.fetch_open_orders(symbol)]
        except ccxt.BaseError as exc:
            raise ExchangeUnavailable(f"listing open orders failed: {type(exc).__name__}") from None
        return found

    def balances(self) -> dict[str, Decimal]:
        import ccxt

        try:
            raw = self.client.fetch_balance()
        except ccxt.BaseError as exc:
            raise ExchangeUnavailable(f"reading balances failed: {type(exc).__name__}") from None
        totals: Mapping[str, Any] = raw.get("total") or {}
        return {asset: decimal_from_float(amount) for asset, amount in totals.items() if amount}

    def last_price(self, symbol: str) -> Decimal:
        import ccxt

        try:
            ticker = self.client.fetch_ticker(symbol)
        except ccxt.BaseError as exc:
            raise ExchangeUnavailable(f"reading the price failed: {type(exc).__name__}") from None
        last = ticker.get("last") or ticker.get("close")
        if not last:
            raise ExchangeUnavailable(f"{self.exchange} reports no price for {symbol}")
        return decimal_from_float(last)

    # -- helpers ---------------------------------------------------------------------------

    def _client_id(self, order: Order) -> str:
        return self.capabilities.exchange_client_id(order.client_order_id)

    def _existing(self, order: Order, why: str) -> ExchangeOrder:
        """The order a failed or refused create may have placed, looked up by client id."""
        for attempt in range(self.lookup_attempts):
            try:
                found = self.lookup(order)
            except ExchangeUnavailable:
                found = None
            if found is not None:
                logger.info(
                    "order found by client id", extra={"client_order_id": order.client_order_id, "why": why}
                )
                return found
            if attempt + 1 < self.lookup_attempts:
                self.sleep(self.lookup_delay_s * (attempt + 1))
        raise ExchangeUnavailable(f"{why}; the order was not found by its client id yet")

    def _with_trades(self, found: ExchangeOrder, symbol: str) -> ExchangeOrder:
        if found.filled == 0 or found.trades:
            return found
        import ccxt

        try:
            if self.client.has.get("fetchOrderTrades"):
                raws = self.client.fetch_order_trades(found.exchange_order_id, symbol)
            else:
                raws = self.client.fetch_my_trades(symbol, None, None, {"orderId": found.exchange_order_id})
        except ccxt.BaseError:
            logger.warning("fetching the order's trades failed; booking its cumulative fill")
            return found
        trades = tuple(_trade(raw) for raw in raws if str(raw.get("order")) == found.exchange_order_id)
        return ExchangeOrder(
            found.exchange_order_id,
            found.client_order_id,
            found.status,
            found.filled,
            found.average_price,
            trades,
            found.symbol,
        )

    @staticmethod
    def _parse(raw: Mapping[str, Any]) -> ExchangeOrder:
        filled = decimal_from_float(raw.get("filled") or 0)
        status_text = str(raw.get("status") or "open")
        if status_text == "closed":
            status = ExchangeStatus.FILLED
        elif status_text in ("canceled", "cancelled"):
            status = ExchangeStatus.CANCELED
        elif status_text in ("rejected", "expired"):
            status = ExchangeStatus(status_text)
        else:
            status = ExchangeStatus.PARTIALLY_FILLED if filled > 0 else ExchangeStatus.OPEN
        average = raw.get("average") or raw.get("price")
        return ExchangeOrder(
            exchange_order_id=str(raw["id"]),
            client_order_id=raw.get("clientOrderId"),
            status=status,
            filled=filled,
            average_price=decimal_from_float(average) if average and filled > 0 else None,
            trades=tuple(_trade(t) for t in raw.get("trades") or () if t.get("id") is not None),
            symbol=raw.get("symbol"),
        )


def _trade(raw: Mapping[str, Any]) -> NewFill:
    fee = raw.get("fee") or {}
    cost = fee.get("cost")
    return NewFill(
        trade_id=str(raw["id"]),
        quantity=decimal_from_float(raw["amount"]),
        price=decimal_from_float(raw["price"]),
        fee=decimal_from_float(cost) if cost else Decimal(0),
        fee_currency=str(fee.get("currency") or "USDT")
        if cost
        else str(raw.get("symbol", "/USDT")).split("/")[-1],
        liquidity="maker" if raw.get("takerOrMaker") == "maker" else "taker",
        executed_at=int(raw.get("timestamp") or 0),
    )


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def side_of(value: str) -> OrderSide:
    return OrderSide(value)
