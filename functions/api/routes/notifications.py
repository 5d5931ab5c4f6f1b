"""Notification channels: Telegram chats and webhooks told about fills, stops, risk and failures.

Creating one takes a signed-in session (it stores a secret); reading, changing, deleting and
testing take a token that may trade. Secrets are never returned, except a webhook's signing key
once, in the answer that creates it.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from functions.api.context import Context, request_id
from functions.api.errors import error_responses
from functions.api.security import CurrentUser, SessionUser, TradingUser
from tekoa.notify.delivery import Notifier
from tekoa.notify.models import ChannelCreate, ChannelUpdate, CreatedChannel, NotificationChannel, TestResult
from tekoa.services import notifications as service

router = APIRouter(prefix="/v1/notification-channels", tags=["notifications"])

_NO_STORE = {"Cache-Control": "no-store"}


@router.post("", status_code=201, response_model=CreatedChannel, responses=error_responses(401, 403, 422))
def create_channel(
    body: ChannelCreate, request: Request, principal: SessionUser, context: Context
) -> JSONResponse:
    """Add a Telegram chat (with your bot's token) or a webhook (its signing key is in this answer only)."""
    created = service.create_channel(
        context.database,
        context.key_provider,
        context.settings,
        principal.user_id,
        body,
        request_id=request_id(request),
    )
    return JSONResponse(
        created.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/v1/notification-channels/{created.channel.id}", **_NO_STORE},
    )


@router.get("", response_model=list[NotificationChannel], responses=error_responses(401))
def list_channels(principal: CurrentUser, context: Context) -> list[NotificationChannel]:
    """Your channels (secrets as hints only), newest first."""
    return service.list_channels(context.database, principal.user_id)


@router.get("/{channel_id}", response_model=NotificationChannel, responses=error_responses(401, 404, 422))
def get_channel(channel_id: UUID, principal: CurrentUser, context: Context) -> NotificationChannel:
    return service.get_channel(context.database, principal.user_id, channel_id)


@router.patch(
    "/{channel_id}", response_model=NotificationChannel, responses=error_responses(401, 403, 404, 422)
)
def update_channel(
    channel_id: UUID, body: ChannelUpdate, principal: TradingUser, context: Context
) -> NotificationChannel:
    """Rename a channel, choose its events, or turn it off and on."""
    return service.update_channel(context.database, principal.user_id, channel_id, body)


@router.delete(
    "/{channel_id}", status_code=204, response_class=Response, responses=error_responses(401, 403, 404, 422)
)
def delete_channel(channel_id: UUID, request: Request, principal: TradingUser, context: Context) -> Response:
    service.delete_channel(context.database, principal.user_id, channel_id, request_id=request_id(request))
    return Response(status_code=204)


@router.post("/{channel_id}/test", response_model=TestResult, responses=error_responses(401, 403, 404, 422))
def test_channel(channel_id: UUID, principal: TradingUser, context: Context) -> TestResult:
    """Send a test message now (once, not retried); `delivered` says whether the endpoint took it."""
    notifier = Notifier(context.database, context.key_provider, context.settings, retry_queue=None)
    return service.send_test(notifier, principal.user_id, channel_id)
