"""Notification channels: create (the secret sealed as broker keys are), list, change, delete,
and send a test message.

A Telegram channel's bot token comes from the user; a webhook's signing key is made here and
shown once. Both are sealed under `{user_id, credential_id: "notification:<id>"}` and never
returned. A webhook URL must be https to a public host unless `notify_allow_insecure_urls` (the
local platform) says otherwise: the platform must not be a way to reach its own network.
"""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import urlsplit
from uuid import UUID, uuid4

from tekoa.db import notification_channels as rows
from tekoa.db.audit import record_audit
from tekoa.db.connection import Database, tenant_transaction
from tekoa.errors import ValidationFailed
from tekoa.notify.delivery import DeliveryFailed, Notification, Notifier, channel_context
from tekoa.notify.models import (
    ChannelCreate,
    ChannelNotFound,
    ChannelUpdate,
    CreatedChannel,
    NotificationChannel,
    NotifyEvent,
    TelegramChannelCreate,
    TestResult,
)
from tekoa.security.envelope import KeyProvider, seal
from tekoa.settings import Settings

MAX_CHANNELS = 10


def _check_url(url: str, settings: Settings) -> None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port out of range
    except ValueError:
        raise ValidationFailed("is not a valid URL", field="url") from None
    if not parts.hostname or parts.scheme not in {"http", "https"}:
        raise ValidationFailed("must be an http(s) URL with a host", field="url")
    if settings.notify_allow_insecure_urls:
        return
    if parts.scheme != "https":
        raise ValidationFailed("must be an https URL", field="url")
    host = parts.hostname.lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise ValidationFailed("must be a public host", field="url") from None
        return
    if not address.is_global:
        raise ValidationFailed("must be a public address", field="url")


def _unique(events: list[NotifyEvent]) -> list[NotifyEvent]:
    return list(dict.fromkeys(events))


def create_channel(
    database: Database,
    key_provider: KeyProvider,
    settings: Settings,
    user_id: UUID,
    request: ChannelCreate,
    *,
    request_id: str | None = None,
) -> CreatedChannel:
    """Seal the secret and store the channel; audited as `notification_channel.created`."""
    channel_id = uuid4()
    if isinstance(request, TelegramChannelCreate):
        secret, shown = request.bot_token.get_secret_value(), None
    else:
        _check_url(request.url, settings)
        secret = shown = secrets.token_urlsafe(32)
    sealed = seal(key_provider, secret.encode(), channel_context(user_id, channel_id))
    with database.connection() as conn, tenant_transaction(conn, user_id):
        if len(rows.list_channels(conn, user_id)) >= MAX_CHANNELS:
            raise ValidationFailed(f"at most {MAX_CHANNELS} notification channels", field="kind")
        channel = rows.insert_channel(
            conn,
            user_id,
            channel_id=channel_id,
            kind=request.kind,
            name=request.name,
            target=request.target,
            events=_unique(request.events),
            hint="…" + secret[-4:],
            sealed=sealed,
        )
        record_audit(
            conn,
            user_id=user_id,
            action="notification_channel.created",
            target_type="notification_channel",
            target_id=str(channel_id),
            detail={"kind": request.kind, "key_provider": sealed.key_provider},
            request_id=request_id,
        )
    return CreatedChannel(channel=channel, signing_secret=shown)


def list_channels(database: Database, user_id: UUID) -> list[NotificationChannel]:
    with database.connection() as conn, tenant_transaction(conn, user_id):
        return rows.list_channels(conn, user_id)


def get_channel(database: Database, user_id: UUID, channel_id: UUID) -> NotificationChannel:
    with database.connection() as conn, tenant_transaction(conn, user_id):
        channel = rows.get_channel(conn, user_id, channel_id)
    if channel is None:
        raise ChannelNotFound()
    return channel


def update_channel(
    database: Database, user_id: UUID, channel_id: UUID, request: ChannelUpdate
) -> NotificationChannel:
    with database.connection() as conn, tenant_transaction(conn, user_id):
        channel = rows.update_channel(
            conn,
            user_id,
            channel_id,
            name=request.name,
            events=None if request.events is None else _unique(request.events),
            enabled=request.enabled,
        )
    if channel is None:
        raise ChannelNotFound()
    return channel


def delete_channel(
    database: Database, user_id: UUID, channel_id: UUID, *, request_id: str | None = None
) -> None:
    with database.connection() as conn, tenant_transaction(conn, user_id):
        if not rows.delete_channel(conn, user_id, channel_id):
            raise ChannelNotFound()
        record_audit(
            conn,
            user_id=user_id,
            action="notification_channel.deleted",
            target_type="notification_channel",
            target_id=str(channel_id),
            detail={},
            request_id=request_id,
        )


def send_test(notifier: Notifier, user_id: UUID, channel_id: UUID) -> TestResult:
    """Send a test message now, once (not retried): the answer says whether it arrived."""
    channel = get_channel(notifier.database, user_id, channel_id)
    notification = Notification(
        user_id=user_id,
        channel_id=channel.id,
        event=channel.events[0],
        text=f"Tekoa test message for {channel.name}",
        data={"test": True},
    )
    try:
        notifier.send(notification)
    except DeliveryFailed as exc:
        return TestResult(delivered=False, error=str(exc))
    return TestResult(delivered=True)
