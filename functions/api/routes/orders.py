"""/v1/orders: your orders — place one yourself, list, read with history and fills, cancel.

`POST /v1/orders` checks the order against its market (tick, lot, minimum amount and value),
the trading states, your position (sells never exceed it) and your balance; a refusal is a
422 whose code says why (`INSUFFICIENT_BALANCE`, `INVALID_ORDER`, `STALE_PRICE`,
`TRADING_HALTED`, `NO_POSITION`, ...) and nothing is stored. An accepted order is answered 202
with its status `new`, its funds held; the executor sends or fills it moments later — read it
back with `GET /v1/orders/{id}`. A paper account opens by itself on your first paper order.
Cancelling is asynchronous too (202); an order that is already final answers 409.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from functions.api.context import Context
from functions.api.errors import error_responses
from functions.api.idempotency import Created, IdempotencyKey, idempotent
from functions.api.pagination import Page, PageParams, after_created, created_position
from functions.api.security import CurrentUser, TradingUser
from tekoa.domain.execution import Fill, Order, OrderEvent, OrderStatus
from tekoa.domain.symbols import Symbol
from tekoa.domain.text import Reason
from tekoa.services import orders as service
from tekoa.services.orders import ManualOrder

router = APIRouter(prefix="/v1/orders", tags=["orders"])


class OrderDetailOut(BaseModel):
    """An order with everything that happened to it and every execution."""

    order: Order
    events: list[OrderEvent]
    fills: list[Fill]


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = Field(None, description="Kept in the order's history.")


@router.post("", status_code=202, response_model=Order, responses=error_responses(401, 403, 409, 422))
def place_order(
    body: ManualOrder,
    request: Request,
    principal: TradingUser,
    context: Context,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Place an order yourself (paper by default). Honours `Idempotency-Key`."""
    return idempotent(
        context,
        principal,
        idempotency_key,
        request,
        body,
        create=lambda before_commit: service.place_manual_order(
            context.database,
            context.settings,
            context.order_queue,
            principal.user_id,
            body,
            before_commit=before_commit,
        ),
        respond=lambda order: Created(202, order, {"Location": f"/v1/orders/{order.id}"}),
    )


@router.get("", response_model=Page[Order], responses=error_responses(401, 422))
def list_orders(
    principal: CurrentUser,
    page: PageParams,
    context: Context,
    status: list[OrderStatus] | None = Query(None, description="Only orders in these statuses (repeat it)."),
    bot_id: UUID | None = Query(None, description="Only this bot's orders."),
    account_id: UUID | None = Query(None, description="Only this account's orders."),
    symbol: Symbol | None = Query(None, description="Only this market's orders."),
) -> Page[Order]:
    """Your orders, newest first."""
    rows = service.list_orders(
        context.database,
        principal.user_id,
        statuses=status,
        bot_id=bot_id,
        account_id=account_id,
        symbol=symbol,
        after=after_created(page),
        limit=page.limit + 1,
    )
    return Page[Order].build(rows, page, created_position)


@router.get("/{order_id}", response_model=OrderDetailOut, responses=error_responses(401, 404, 422))
def get_order(order_id: UUID, principal: CurrentUser, context: Context) -> OrderDetailOut:
    """One order, its history (oldest first) and its fills."""
    detail = service.get_order(context.database, principal.user_id, order_id)
    return OrderDetailOut(order=detail.order, events=detail.events, fills=detail.fills)


@router.post(
    "/{order_id}/cancel",
    status_code=202,
    response_model=Order,
    responses=error_responses(401, 403, 404, 409, 422),
)
def cancel_order(
    order_id: UUID,
    principal: TradingUser,
    context: Context,
    body: CancelRequest | None = None,
) -> Order:
    """Ask for a working order to be cancelled (the executor does it moments later)."""
    return service.cancel_order(
        context.database,
        context.order_queue,
        principal.user_id,
        order_id,
        reason=body.reason if body is not None else None,
    )
