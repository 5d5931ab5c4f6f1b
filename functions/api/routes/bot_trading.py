"""/v1/bots/{id}/…: what a bot did and manual control — its evaluations (one per candle: the
signal, why, the risk verdicts and the intents sent), its performance, and freqtrade's
`/forceexit` and `/forceenter` (both audited)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request

from functions.api.context import Context, request_id
from functions.api.errors import error_responses
from functions.api.pagination import Page, PageParams, before_number
from functions.api.security import CurrentUser, TradingUser
from tekoa.domain.execution import Order
from tekoa.services import bot_trading as service
from tekoa.services.bot_trading import Evaluation, ForcedEntry, ForceEntry, Performance

router = APIRouter(prefix="/v1/bots", tags=["bots"])


@router.get(
    "/{bot_id}/evaluations", response_model=Page[Evaluation], responses=error_responses(401, 404, 422)
)
def list_evaluations(
    bot_id: UUID, principal: CurrentUser, page: PageParams, context: Context
) -> Page[Evaluation]:
    """The bot's evaluations, newest candle first."""
    rows = service.list_evaluations(
        context.database,
        principal.user_id,
        bot_id,
        before=before_number(page, "candle_open_time"),
        limit=page.limit + 1,
    )
    return Page[Evaluation].build(rows, page, lambda e: {"candle_open_time": e.candle_open_time})


@router.get("/{bot_id}/performance", response_model=Performance, responses=error_responses(401, 404, 422))
def performance(bot_id: UUID, principal: CurrentUser, context: Context) -> Performance:
    """P&L, trades, win rate and drawdown of the bot."""
    return service.performance(context.database, principal.user_id, bot_id)


@router.post(
    "/{bot_id}/force-exit",
    status_code=202,
    response_model=list[Order],
    responses=error_responses(401, 403, 404, 409, 422),
)
def force_exit(bot_id: UUID, request: Request, principal: TradingUser, context: Context) -> list[Order]:
    """Close the bot's open position at market now (409 when it holds none)."""
    return service.force_exit(
        context.database,
        context.settings,
        context.order_queue,
        principal.user_id,
        bot_id,
        request_id=request_id(request),
    )


@router.post(
    "/{bot_id}/force-entry",
    status_code=202,
    response_model=ForcedEntry,
    responses=error_responses(401, 403, 404, 422),
)
def force_entry(
    bot_id: UUID, body: ForceEntry, request: Request, principal: TradingUser, context: Context
) -> ForcedEntry:
    """Buy for the bot at market now; trading states and funds are checked when it executes."""
    return service.force_entry(
        context.database,
        context.settings,
        context.order_queue,
        principal.user_id,
        bot_id,
        body,
        request_id=request_id(request),
    )
