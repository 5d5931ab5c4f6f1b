"""/v1/positions: what you hold — per bot, or per account and market for your own orders.

An open position shows its quantity, average entry, realised P&L (net of fees), and, valued at
the market's last trade, its market value and unrealised P&L; its `protection` is the stop,
take-profit ladder and trailing anchor the bot armed at entry. Closing sells what it holds at
market (202 with the order); on paper its resting exits are cancelled first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from functions.api.context import Context
from functions.api.cursors import invalid_cursor
from functions.api.errors import error_responses
from functions.api.idempotency import Created, IdempotencyKey, idempotent
from functions.api.pagination import Page, PageParams, PageRequest
from functions.api.security import CurrentUser, TradingUser
from tekoa.domain.execution import Order, Position
from tekoa.domain.wire import DecimalText
from tekoa.services import positions as service
from tekoa.services.positions import PositionView

router = APIRouter(prefix="/v1/positions", tags=["positions"])


class PositionOut(BaseModel):
    """A position, valued at the market's last trade when it is open."""

    position: Position
    last_price: DecimalText | None = Field(description="The market's last trade (open positions).")
    last_price_at: int | None = Field(description="When that trade happened (UTC ms).")
    market_value: DecimalText | None
    unrealized_pnl: DecimalText | None = Field(
        description="quantity × (last price − average entry), before exit fees."
    )

    @classmethod
    def of(cls, view: PositionView) -> PositionOut:
        return cls(
            position=view.position,
            last_price=view.last_price,
            last_price_at=view.last_price_at,
            market_value=view.market_value,
            unrealized_pnl=view.unrealized_pnl,
        )


class CloseAllRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_id: UUID | None = Field(None, description="Only this bot's positions.")
    account_id: UUID | None = Field(None, description="Only this account's positions.")


class Closing(BaseModel):
    """The orders that close the positions."""

    orders: list[Order]


def _position(view: PositionOut) -> dict[str, Any]:
    return {"opened_at": view.position.opened_at.isoformat(), "id": str(view.position.id)}


def _after(page: PageRequest) -> tuple[datetime, UUID] | None:
    position = page.after("opened_at", "id")
    if position is None:
        return None
    try:
        return datetime.fromisoformat(position[0]), UUID(position[1])
    except (TypeError, ValueError) as exc:
        raise invalid_cursor() from exc


@router.get("", response_model=Page[PositionOut], responses=error_responses(401, 422))
def list_positions(
    principal: CurrentUser,
    page: PageParams,
    context: Context,
    state: Literal["open", "closed"] | None = Query(None, description="Only open or only closed positions."),
    bot_id: UUID | None = Query(None, description="Only this bot's positions."),
    account_id: UUID | None = Query(None, description="Only this account's positions."),
) -> Page[PositionOut]:
    """Your positions, newest opened first."""
    rows = service.list_positions(
        context.database,
        principal.user_id,
        is_open=None if state is None else state == "open",
        bot_id=bot_id,
        account_id=account_id,
        after=_after(page),
        limit=page.limit + 1,
    )
    return Page[PositionOut].build([PositionOut.of(view) for view in rows], page, _position)


@router.post(
    "/close-all", status_code=202, response_model=Closing, responses=error_responses(401, 403, 409, 422)
)
def close_all_positions(
    principal: TradingUser, context: Context, body: CloseAllRequest | None = None
) -> Closing:
    """Close every open position of yours (or of one bot or account) at market."""
    orders = service.close_all(
        context.database,
        context.settings,
        context.order_queue,
        principal.user_id,
        bot_id=body.bot_id if body else None,
        account_id=body.account_id if body else None,
    )
    return Closing(orders=orders)


@router.get("/{position_id}", response_model=PositionOut, responses=error_responses(401, 404, 422))
def get_position(position_id: UUID, principal: CurrentUser, context: Context) -> PositionOut:
    """One position."""
    return PositionOut.of(service.get_position(context.database, principal.user_id, position_id))


@router.post(
    "/{position_id}/close",
    status_code=202,
    response_model=Order,
    responses=error_responses(401, 403, 404, 409, 422),
)
def close_position(
    position_id: UUID,
    request: Request,
    principal: TradingUser,
    context: Context,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Sell what the position holds at market. Honours `Idempotency-Key`."""
    return idempotent(
        context,
        principal,
        idempotency_key,
        request,
        {},
        create=lambda before_commit: service.close_position(
            context.database,
            context.settings,
            context.order_queue,
            principal.user_id,
            position_id,
            before_commit=before_commit,
        ),
        respond=lambda order: Created(202, order, {"Location": f"/v1/orders/{order.id}"}),
    )
