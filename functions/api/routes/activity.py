"""/v1/activity: what happened to your bots, newest first; filter, page, clear."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query, Response

from functions.api.context import Context
from functions.api.errors import error_responses
from functions.api.pagination import Page, PageParams, before_number
from functions.api.security import CurrentUser, TradingUser
from tekoa.domain.resources import ActivityEntry, ActivityLevel
from tekoa.domain.wire import EpochMillisInput
from tekoa.services import activity as service

router = APIRouter(prefix="/v1/activity", tags=["activity"])


@router.get("", response_model=Page[ActivityEntry], responses=error_responses(401, 422))
def list_activity(
    principal: CurrentUser,
    page: PageParams,
    context: Context,
    bot_id: UUID | None = Query(None, description="Only entries about this bot."),
    level: ActivityLevel | None = Query(None, description="Only entries of this level."),
    since: EpochMillisInput | None = Query(None, description="Entries at or after this time (UTC ms)."),
    until: EpochMillisInput | None = Query(None, description="Entries before this time (UTC ms)."),
) -> Page[ActivityEntry]:
    """Your activity, newest first."""
    rows = service.list_activity(
        context.database,
        principal.user_id,
        bot_id=bot_id,
        level=level,
        since=since,
        until=until,
        before_id=before_number(page, "id"),
        limit=page.limit + 1,
    )
    return Page[ActivityEntry].build(rows, page, lambda entry: {"id": entry.id})


@router.delete("", status_code=204, response_class=Response, responses=error_responses(401, 403, 422))
def clear_activity(
    principal: TradingUser,
    context: Context,
    bot_id: UUID | None = Query(None, description="Clear only this bot's entries."),
) -> Response:
    """Clear your activity feed (or one bot's entries)."""
    service.clear_activity(context.database, principal.user_id, bot_id=bot_id)
    return Response(status_code=204)
