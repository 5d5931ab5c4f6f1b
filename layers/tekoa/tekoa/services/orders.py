"""Orders for the API: manual orders, listing, details, cancellation.

A manual order is checked and claimed in the request's transaction — its market's grid and
minimums, the trading states, its position, and the balance (422 INSUFFICIENT_BALANCE, with
nothing stored) — and its funds are held there. It is then handed to the executor through the
order queue and the API answers 202 with the order as claimed (`new`); the executor sends or
fills it within moments. If the queue cannot be reached, the claimed order is sent again by
reconciliation, and its client order id makes a second send harmless.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import psycopg
from pydantic import ConfigDict, Field, model_validator

from tekoa.aws.queues import OrderQueue
from tekoa.db import accounts as account_rows
from tekoa.db import orders as order_rows
from tekoa.db.connection import BeforeCommit, Database, tenant_transaction
from tekoa.db.order_context import load_order_context
from tekoa.domain.bots import TradingMode
from tekoa.domain.exchanges import ExchangeId
from tekoa.domain.execution import (
    WORKING_STATUSES,
    Account,
    Fill,
    IllegalOrderTransition,
    Order,
    OrderAction,
    OrderEvent,
    OrderNotFound,
    OrderRefused,
    OrderStatus,
    RejectCode,
)
from tekoa.domain.numbers import BoundedDecimals
from tekoa.domain.orders import CLIENT_ORDER_ID_PATTERN, OrderSide, OrderType
from tekoa.domain.symbols import Symbol
from tekoa.errors import Conflict, ValidationFailed
from tekoa.execution import booking
from tekoa.execution.accounts import PaperDefaults, open_account
from tekoa.execution.admission import CostModel, OrderAsk, admit, fresh_price, normalise
from tekoa.execution.messages import CancelMessage, ExecuteMessage
from tekoa.execution.writes import Writes
from tekoa.observability import logger
from tekoa.settings import Settings

Quantity = Annotated[
    Decimal,
    Field(gt=0, le=Decimal("1e12"), max_digits=30, decimal_places=18, allow_inf_nan=False),
]
Price = Annotated[
    Decimal,
    Field(gt=0, le=Decimal("1e12"), max_digits=30, decimal_places=18, allow_inf_nan=False),
]


class ClientOrderIdTaken(Conflict):
    code = "CLIENT_ORDER_ID_TAKEN"

    def __init__(self) -> None:
        super().__init__("an order with this client_order_id already exists", field="client_order_id")


class ManualOrder(BoundedDecimals):
    """An order you place yourself (not a bot's). It belongs to your manual position in the
    market; sells never exceed that position."""

    model_config = ConfigDict(extra="forbid")

    exchange: ExchangeId
    symbol: Symbol
    side: OrderSide
    type: OrderType = OrderType.MARKET
    quantity: Quantity = Field(description="Base-currency amount; must be on the market's amount step.")
    limit_price: Price | None = Field(None, description="Limit orders: the worst price you accept.")
    stop_price: Price | None = Field(None, description="Stop orders: the price that triggers a market order.")
    mode: TradingMode = Field(
        TradingMode.PAPER, description="paper (default) or live (needs a live account)."
    )
    reduce_only: bool = False
    client_order_id: str | None = Field(
        None,
        pattern=CLIENT_ORDER_ID_PATTERN.pattern,
        description="Your id for the order (unique per account); one is made up when omitted.",
    )

    @model_validator(mode="after")
    def _prices_match_type(self) -> ManualOrder:
        if self.type is OrderType.LIMIT and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")
        if self.type is OrderType.STOP and self.stop_price is None:
            raise ValueError("a stop order needs stop_price")
        if self.type is not OrderType.LIMIT and self.limit_price is not None:
            raise ValueError("limit_price is only for limit orders")
        if self.type is not OrderType.STOP and self.stop_price is not None:
            raise ValueError("stop_price is only for stop orders")
        return self


@dataclass(frozen=True, slots=True)
class OrderDetail:
    order: Order
    events: list[OrderEvent]
    fills: list[Fill]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def place_manual_order(
    database: Database,
    settings: Settings,
    queue: OrderQueue,
    user_id: UUID,
    request: ManualOrder,
    *,
    before_commit: BeforeCommit[Order] | None = None,
) -> Order:
    """Check, claim and hold a manual order, then queue it (see the module docstring)."""
    costs = CostModel.from_settings(settings)
    client_order_id = request.client_order_id or f"m{uuid.uuid4().hex}"
    with database.connection() as conn, tenant_transaction(conn, user_id):
        account = _account_for(conn, settings, user_id, request.exchange, request.mode)
        order = claim_order(
            conn,
            user_id,
            account,
            costs,
            symbol=request.symbol,
            bot_id=None,
            client_order_id=client_order_id,
            ask=OrderAsk(
                side=request.side,
                type=request.type,
                quantity=request.quantity,
                limit_price=request.limit_price,
                stop_price=request.stop_price,
                reduce_only=request.reduce_only,
            ),
            strict=True,
            source="manual",
        )
        if before_commit is not None:
            before_commit(conn, order)
    send_claimed(queue, user_id, order)
    return order


def _account_for(
    conn: psycopg.Connection[Any], settings: Settings, user_id: UUID, exchange: str, mode: TradingMode
) -> Account:
    if mode is TradingMode.PAPER:
        return open_account(
            conn, user_id, exchange=exchange, mode=mode, paper=PaperDefaults.from_settings(settings)
        )
    account = account_rows.find_account(conn, user_id, exchange, mode)
    if account is None:
        raise ValidationFailed(
            f"you have no live account on {exchange}: open one with POST /v1/accounts", field="mode"
        )
    return account


def claim_order(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    account: Account,
    costs: CostModel,
    *,
    symbol: str,
    bot_id: UUID | None,
    client_order_id: str,
    ask: OrderAsk,
    strict: bool,
    source: str,
) -> Order:
    """Check and claim an order in the caller's transaction; OrderRefused (4xx) says why not."""
    context = load_order_context(
        conn, user_id, account.id, symbol=symbol, bot_id=bot_id, client_order_id=client_order_id
    )
    assert context is not None
    if context.order is not None:
        raise ClientOrderIdTaken()
    if context.rules is None:
        raise OrderRefused(
            RejectCode.INVALID_ORDER,
            f"unknown symbol: Tekoa has no market {symbol} on {account.exchange}",
            field="symbol",
        )
    last = context.last_trade
    price = None if last is None else fresh_price(last.price, last.trade_time, _now_ms(), costs)
    if price is None and ask.type is OrderType.MARKET:
        raise OrderRefused(
            RejectCode.STALE_PRICE,
            f"no recent price for {symbol}; try again when the market trades",
            field="symbol",
        )
    checked = normalise(context.rules, ask, reference_price=price, strict=strict)
    admission = admit(
        account=account,
        platform_state=context.platform_state,
        rules=context.rules,
        side=ask.side,
        type=ask.type,
        order=checked,
        reduce_only=ask.reduce_only,
        reference_price=price,
        position_quantity=Decimal(0) if context.position is None else context.position.quantity,
        pending_sells=context.pending_sells,
        available=context.available(
            context.rules.base if ask.side is OrderSide.SELL else context.rules.quote
        ),
        costs=costs,
        source=source,
    )
    writes = Writes()
    order = booking.claim(
        writes,
        user_id,
        account,
        order_rows.new_order(
            account.id,
            bot_id=bot_id,
            client_order_id=client_order_id,
            exchange=account.exchange,
            symbol=symbol,
            side=ask.side,
            type=ask.type,
            quantity=checked.quantity,
            limit_price=checked.limit_price,
            stop_price=checked.stop_price,
            reduce_only=ask.reduce_only,
            intent={"source": source},
        ),
        hold_asset=admission.asset,
        hold_amount=admission.amount,
        source=source,
    )
    writes.flush(conn)
    return order


def send_claimed(queue: OrderQueue, user_id: UUID, order: Order) -> None:
    """Hand a claimed order to the executor; a failure leaves it for reconciliation."""
    try:
        queue.send(
            [
                ExecuteMessage(
                    user_id=user_id,
                    account_id=order.account_id,
                    order_id=order.id,
                    client_order_id=order.client_order_id,
                    enqueued_at=_now_ms(),
                )
            ]
        )
    except Exception:
        logger.exception(
            "queueing a claimed order failed; reconciliation sends it", extra={"order_id": str(order.id)}
        )


def list_orders(
    database: Database,
    user_id: UUID,
    *,
    statuses: list[OrderStatus] | None,
    bot_id: UUID | None,
    account_id: UUID | None,
    symbol: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Order]:
    """The caller's orders, newest first."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        return order_rows.list_orders(
            conn,
            user_id,
            statuses=statuses,
            bot_id=bot_id,
            account_id=account_id,
            symbol=symbol,
            after=after,
            limit=limit,
        )


def get_order(database: Database, user_id: UUID, order_id: UUID) -> OrderDetail:
    """One of the caller's orders with its history and fills; OrderNotFound otherwise."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        order = order_rows.get_order(conn, user_id, order_id)
        if order is None:
            raise OrderNotFound()
        return OrderDetail(
            order,
            order_rows.list_events(conn, user_id, order_id),
            order_rows.list_fills(conn, user_id, order_id),
        )


def cancel_order(
    database: Database, queue: OrderQueue, user_id: UUID, order_id: UUID, *, reason: str | None
) -> Order:
    """Ask the executor to cancel a working order (409 once it is final)."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        order = order_rows.get_order(conn, user_id, order_id)
    if order is None:
        raise OrderNotFound()
    if order.status not in WORKING_STATUSES:
        raise IllegalOrderTransition(order.status, OrderAction.CANCEL)
    queue.send(
        [
            CancelMessage(
                user_id=user_id,
                account_id=order.account_id,
                target_client_order_id=order.client_order_id,
                reason=reason or "canceled by you",
                enqueued_at=_now_ms(),
            )
        ]
    )
    return order
