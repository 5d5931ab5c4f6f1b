"""/v1/bots: strategies bound to a market, a trading mode and risk limits, and their lifecycle.

Mode is `paper` by default. `live` needs a verified broker credential of the bot's exchange
and `"confirm_live": true` in the request that creates the live bot or switches it to live.
Status moves with `POST /{id}/start|pause|stop` (409 CONFLICT for a move the status machine
forbids, e.g. pausing a stopped bot); every change is in `GET /{id}/status-history`.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from functions.api.context import Context
from functions.api.errors import error_responses
from functions.api.idempotency import Created, IdempotencyKey, idempotent
from functions.api.pagination import Page, PageParams, after_created, before_number, created_position
from functions.api.security import CurrentUser, TradingUser
from functions.api.versioning import IfMatch, check_version, etag
from tekoa.domain.bots import BotAction, BotStatus
from tekoa.domain.resources import Bot, BotStatusChange
from tekoa.domain.text import Reason
from tekoa.services import bots as service
from tekoa.services.bot_trading import BotHealth, health
from tekoa.services.bots import BotCreate, BotUpdate

router = APIRouter(prefix="/v1/bots", tags=["bots"])


class StatusChangeRequest(BaseModel):
    """Optional note kept in the bot's status history."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None


class StopAllResult(BaseModel):
    """The bots that were stopped."""

    stopped: list[Bot]


StatusChangeBody = Annotated[StatusChangeRequest | None, Body()]


@router.post("", status_code=201, response_model=Bot, responses=error_responses(401, 403, 409, 422))
def create_bot(
    body: BotCreate,
    request: Request,
    principal: TradingUser,
    context: Context,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Create a stopped bot. Honours `Idempotency-Key`."""
    return idempotent(
        context,
        principal,
        idempotency_key,
        request,
        body,
        create=lambda before_commit: service.create_bot(
            context.database, principal.user_id, body, before_commit=before_commit
        ),
        respond=lambda bot: Created(201, bot, {"ETag": etag(bot.version), "Location": f"/v1/bots/{bot.id}"}),
    )


@router.get("", response_model=Page[Bot], responses=error_responses(401, 422))
def list_bots(
    principal: CurrentUser,
    page: PageParams,
    context: Context,
    status: BotStatus | None = Query(None, description="Only bots in this status."),
    strategy_id: UUID | None = Query(None, description="Only bots running this strategy."),
    archived: bool = Query(
        False, description="List the archived bots (deleted with a trading history) instead."
    ),
) -> Page[Bot]:
    """Your bots, newest first."""
    rows = service.list_bots(
        context.database,
        principal.user_id,
        status=status,
        strategy_id=strategy_id,
        archived=archived,
        after=after_created(page),
        limit=page.limit + 1,
    )
    return Page[Bot].build(rows, page, created_position)


@router.post("/stop-all", response_model=StopAllResult, responses=error_responses(401, 403, 422))
def stop_all_bots(principal: TradingUser, context: Context, body: StatusChangeBody = None) -> StopAllResult:
    """Kill switch: stop every running, paused or failed bot of yours at once."""
    reason = body.reason if body is not None else None
    return StopAllResult(
        stopped=service.stop_all(context.database, principal.user_id, reason=reason, publisher=context.events)
    )


class BotDetail(Bot):
    """A bot with its health: the strategy version it runs, its last and next evaluation."""

    health: BotHealth


@router.get("/{bot_id}", response_model=BotDetail, responses=error_responses(401, 404, 422))
def get_bot(bot_id: UUID, principal: CurrentUser, context: Context, response: Response) -> BotDetail:
    """One bot and its health; the `ETag` header is its version, for `If-Match` on updates."""
    bot = service.get_bot(context.database, principal.user_id, bot_id)
    response.headers["ETag"] = etag(bot.version)
    return BotDetail(**bot.model_dump(), health=health(context.database, principal.user_id, bot))


@router.patch("/{bot_id}", response_model=Bot, responses=error_responses(401, 403, 404, 409, 412, 422, 428))
def update_bot(
    bot_id: UUID,
    body: BotUpdate,
    principal: TradingUser,
    context: Context,
    response: Response,
    if_match: IfMatch = None,
) -> Bot:
    """Change a bot. Market, strategy, mode and credential only while stopped. Needs If-Match or `version`."""
    bot = service.update_bot(
        context.database,
        principal.user_id,
        bot_id,
        body,
        lambda current: check_version(if_match, body.version, current),
    )
    response.headers["ETag"] = etag(bot.version)
    return bot


@router.delete(
    "/{bot_id}", status_code=204, response_class=Response, responses=error_responses(401, 403, 404, 409, 422)
)
def delete_bot(bot_id: UUID, principal: TradingUser, context: Context) -> Response:
    """Delete a stopped bot and its history; 409 while it is running or paused."""
    service.delete_bot(context.database, principal.user_id, bot_id)
    return Response(status_code=204)


def _change(
    bot_id: UUID,
    action: BotAction,
    principal_id: UUID,
    context: Context,
    body: StatusChangeRequest | None,
    response: Response,
) -> Bot:
    reason = body.reason if body is not None else None
    bot = service.change_status(
        context.database, principal_id, bot_id, action, reason=reason, publisher=context.events
    )
    response.headers["ETag"] = etag(bot.version)
    return bot


@router.post("/{bot_id}/start", response_model=Bot, responses=error_responses(401, 403, 404, 409, 422))
def start_bot(
    bot_id: UUID, principal: TradingUser, context: Context, response: Response, body: StatusChangeBody = None
) -> Bot:
    """Start (or resume) a bot; its strategy must be enabled."""
    return _change(bot_id, BotAction.START, principal.user_id, context, body, response)


@router.post("/{bot_id}/pause", response_model=Bot, responses=error_responses(401, 403, 404, 409, 422))
def pause_bot(
    bot_id: UUID, principal: TradingUser, context: Context, response: Response, body: StatusChangeBody = None
) -> Bot:
    """Pause a running bot (no new orders); `start` resumes it."""
    return _change(bot_id, BotAction.PAUSE, principal.user_id, context, body, response)


@router.post("/{bot_id}/stop", response_model=Bot, responses=error_responses(401, 403, 404, 409, 422))
def stop_bot(
    bot_id: UUID, principal: TradingUser, context: Context, response: Response, body: StatusChangeBody = None
) -> Bot:
    """Stop a running, paused or failed bot."""
    return _change(bot_id, BotAction.STOP, principal.user_id, context, body, response)


@router.get(
    "/{bot_id}/status-history", response_model=Page[BotStatusChange], responses=error_responses(401, 404, 422)
)
def bot_status_history(
    bot_id: UUID, principal: CurrentUser, page: PageParams, context: Context
) -> Page[BotStatusChange]:
    """Every status change of the bot, newest first."""
    rows = service.status_history(
        context.database, principal.user_id, bot_id, before_id=before_number(page, "id"), limit=page.limit + 1
    )
    return Page[BotStatusChange].build(rows, page, lambda change: {"id": change.id})
