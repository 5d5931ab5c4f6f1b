"""Delivering notifications: what an event says, to which channels, and what happens on failure.

* Which events: `order.filled` (fills; a filled stop order is also a stop hit), `risk.tripped`
  (a user's limits), `bot.status_changed` to `error` (a failed bot). Each enabled channel of the
  event's owner that chose the event gets one message.
* Telegram: `POST <telegram_api_url>/bot<token>/sendMessage {chat_id, text}`.
* Webhook: `POST <url>` with the JSON notification; `X-Tekoa-Timestamp` (ms) and
  `X-Tekoa-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the channel's key>`,
  so a receiver can check both origin and freshness.
* Once a day (`tekoa.schedules`), the channels that chose `daily_summary` get their owner's
  closed trades of the last 24 hours.
* Each channel is tried on its own with a short timeout: a failing one delays no other channel
  and no live update (pushes are another function). A failure is sent again later through the
  retry queue, after `notify_retry_base_s`, doubling each time, MAX_ATTEMPTS in all; the last
  failure is written to the user's activity feed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from pydantic import BaseModel, Field

from tekoa.db import activity as activity_rows
from tekoa.db import notification_channels as rows
from tekoa.db.connection import Database, service_transaction, tenant_transaction
from tekoa.domain.resources import ActivityLevel
from tekoa.names import EventType
from tekoa.notify.models import ChannelKind, NotifyEvent
from tekoa.observability import logger
from tekoa.security.envelope import KeyProvider, open_sealed
from tekoa.services import trades
from tekoa.settings import Settings

MAX_ATTEMPTS = 5
USER_AGENT = "tekoa-notify/1"


class Notification(BaseModel):
    """One message for one channel; what the retry queue carries (no secret in it)."""

    user_id: UUID
    channel_id: UUID
    event: NotifyEvent
    text: str = Field(max_length=4000)
    data: dict[str, Any] = Field(default_factory=dict)
    attempt: int = 0


class RetryQueue(Protocol):
    """Holds a failed notification back for `delay_s` seconds, then hands it to `Notifier.retry`."""

    def send(self, notification: Notification, delay_s: int) -> None: ...


class DeliveryFailed(Exception):
    """The channel's endpoint refused or did not answer."""


def channel_context(user_id: UUID, channel_id: UUID) -> dict[str, str]:
    """The envelope context of a channel's secret: the broker-key shape the KMS key policy allows,
    naming the channel (`notification:<id>`) where a credential's id would be."""
    return {"user_id": str(user_id), "credential_id": f"notification:{channel_id}"}


def classify(detail_type: str, detail: dict[str, Any]) -> list[NotifyEvent]:
    """The notification events a bus event is (empty: none)."""
    if detail_type == EventType.ORDER_FILLED:
        stop = (
            detail.get("type") in {"stop", "stop_limit"} or "stop" in str(detail.get("reason") or "").lower()
        )
        return [NotifyEvent.FILLS, NotifyEvent.STOP_HIT] if stop else [NotifyEvent.FILLS]
    if detail_type == EventType.RISK_TRIPPED:
        return [NotifyEvent.RISK_TRIPPED]
    if detail_type == EventType.BOT_STATUS_CHANGED and detail.get("to") == "error":
        return [NotifyEvent.BOT_ERROR]
    return []


def text_of(event: NotifyEvent, detail: dict[str, Any]) -> str:
    """The message a person reads."""
    if event in (NotifyEvent.FILLS, NotifyEvent.STOP_HIT):
        verb = "Bought" if detail.get("side") == "buy" else "Sold"
        what = (
            f"{verb} {detail.get('filled_quantity')} {detail.get('symbol')} at {detail.get('average_price')}"
        )
        mode = f" ({detail.get('mode')} {detail.get('exchange')})" if detail.get("mode") else ""
        return ("Stop hit: " if event is NotifyEvent.STOP_HIT else "") + what + mode
    if event is NotifyEvent.RISK_TRIPPED:
        return f"Risk limit tripped: {detail.get('reason') or detail.get('limit') or 'trading halted'}"
    if event is NotifyEvent.BOT_ERROR:
        return f"Bot {detail.get('name') or detail.get('bot_id')} failed: {detail.get('reason') or 'error'}"
    return f"Tekoa: {event.value}"


def summary_text(stats: trades.Stats) -> str:
    """The daily summary a person reads."""
    if stats.trades == 0:
        return "Daily summary: no trades closed in the last 24 hours."
    return (
        f"Daily summary: {stats.trades} trades closed ({stats.wins} won, {stats.losses} lost), "
        f"P&L {stats.pnl:+f} after {stats.fees:f} in fees."
    )


def _post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> None:
    request = urllib.request.Request(  # noqa: S310 - http(s) URLs only (checked when stored)
        url,
        data=body,
        method="POST",
        headers={"content-type": "application/json", "user-agent": USER_AGENT, **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise DeliveryFailed(type(exc).__name__) from None


def webhook_signature(secret: bytes, timestamp_ms: int, body: bytes) -> str:
    """`X-Tekoa-Signature` of a webhook POST."""
    return "sha256=" + hmac.new(secret, f"{timestamp_ms}.".encode() + body, hashlib.sha256).hexdigest()


class Notifier:
    """Delivers notifications (see the module docstring)."""

    def __init__(
        self,
        database: Database,
        key_provider: KeyProvider,
        settings: Settings,
        retry_queue: RetryQueue | None,
        *,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.database = database
        self.key_provider = key_provider
        self.settings = settings
        self.retry_queue = retry_queue
        self.clock_ms = clock_ms

    def event(self, detail_type: str, detail: dict[str, Any]) -> int:
        """Notify the owner's channels of a bus event; messages attempted."""
        kinds = classify(detail_type, detail)
        owner = detail.get("user_id")
        if not kinds or owner is None:
            return 0
        user_id = UUID(str(owner))
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            channels = rows.channels_for(conn, user_id, kinds)
        for channel in channels:
            event = next(kind for kind in reversed(kinds) if kind in channel.events)
            data = {k: v for k, v in detail.items() if k != "user_id"}
            self.deliver(
                Notification(
                    user_id=user_id,
                    channel_id=channel.id,
                    event=event,
                    text=text_of(event, detail),
                    data=data,
                )
            )
        return len(channels)

    def daily_summaries(self, now_ms: int | None = None) -> int:
        """Each user's last 24 hours of closed trades, to their channels that chose the summary;
        messages attempted."""
        now = datetime.fromtimestamp((self.clock_ms() if now_ms is None else now_ms) / 1000, UTC)
        with self.database.connection() as conn, service_transaction(conn):
            owners = rows.owners_told_of(conn, NotifyEvent.DAILY_SUMMARY)
        attempted = 0
        for user_id in owners:
            stats = trades.overall_stats(
                self.database, user_id, bot_id=None, since=now - timedelta(days=1)
            ).total
            text = summary_text(stats)
            data = {"trades": stats.trades, "wins": stats.wins, "losses": stats.losses, "pnl": str(stats.pnl)}
            with self.database.connection() as conn, tenant_transaction(conn, user_id):
                channels = rows.channels_for(conn, user_id, [NotifyEvent.DAILY_SUMMARY])
            for channel in channels:
                self.deliver(
                    Notification(
                        user_id=user_id,
                        channel_id=channel.id,
                        event=NotifyEvent.DAILY_SUMMARY,
                        text=text,
                        data=data,
                    )
                )
                attempted += 1
        return attempted

    def deliver(self, notification: Notification) -> bool:
        """Try once; on failure queue the next attempt (or, after the last, tell the activity feed)."""
        try:
            self.send(notification)
        except DeliveryFailed as exc:
            self._failed(notification, str(exc))
            return False
        return True

    def send(self, notification: Notification) -> None:
        """Send now; DeliveryFailed when the endpoint refuses or does not answer (or the channel is gone)."""
        with self.database.connection() as conn, tenant_transaction(conn, notification.user_id):
            found = rows.get_sealed_channel(conn, notification.user_id, notification.channel_id)
        if found is None:
            raise DeliveryFailed("the channel was deleted")
        channel, sealed = found
        secret = open_sealed(self.key_provider, sealed, channel_context(notification.user_id, channel.id))
        if channel.kind is ChannelKind.TELEGRAM:
            body = json.dumps({"chat_id": channel.target, "text": notification.text}).encode()
            url = f"{self.settings.telegram_api_url.rstrip('/')}/bot{secret.decode()}/sendMessage"
            _post(url, body, {}, self.settings.notify_timeout_s)
        else:
            body = json.dumps(
                {"event": notification.event.value, "text": notification.text, "data": notification.data},
                separators=(",", ":"),
            ).encode()
            at = self.clock_ms()
            headers = {"x-tekoa-timestamp": str(at), "x-tekoa-signature": webhook_signature(secret, at, body)}
            _post(channel.target, body, headers, self.settings.notify_timeout_s)
        logger.info("notification sent", extra={"channel_id": str(channel.id), "kind": channel.kind.value})

    def retry(self, notification: Notification) -> bool:
        """A queued attempt comes due."""
        return self.deliver(notification)

    def _failed(self, notification: Notification, reason: str) -> None:
        attempt = notification.attempt + 1
        logger.warning(
            "notification failed",
            extra={"channel_id": str(notification.channel_id), "attempt": attempt, "reason": reason},
        )
        if attempt < MAX_ATTEMPTS and self.retry_queue is not None:
            delay = min(900, self.settings.notify_retry_base_s * 2 ** (attempt - 1))
            self.retry_queue.send(notification.model_copy(update={"attempt": attempt}), delay)
            return
        with self.database.connection() as conn, tenant_transaction(conn, notification.user_id):
            activity_rows.insert_activity(
                conn,
                notification.user_id,
                level=ActivityLevel.ERROR,
                message=f"Notification not delivered after {attempt} attempts: {reason}",
                data={"channel_id": str(notification.channel_id), "event": notification.event.value},
            )


class SqsRetryQueue:
    """`RetryQueue` on the notification retry queue (SQS holds each message back up to 15 minutes)."""

    def __init__(self, settings: Settings) -> None:
        from tekoa.aws.clients import aws_client

        self._sqs: Any = aws_client("sqs", settings)
        self._name = settings.names.notify_retry_queue
        self._url: str | None = None

    def send(self, notification: Notification, delay_s: int) -> None:
        if self._url is None:
            self._url = str(self._sqs.get_queue_url(QueueName=self._name)["QueueUrl"])
        self._sqs.send_message(
            QueueUrl=self._url, MessageBody=notification.model_dump_json(), DelaySeconds=delay_s
        )
