"""Notification channels through the API and delivery to a loopback Telegram and webhook: the
secret stays sealed, a fill reaches the chat, a failing endpoint is retried with backoff and
its last failure lands in the activity feed, and nobody sees another user's channels."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from tekoa.db.connection import PooledDatabase
from tekoa.local.bus import notify_retries
from tekoa.names import EventType
from tekoa.notify.delivery import MAX_ATTEMPTS, Notification, Notifier, SqsRetryQueue
from tekoa.notify.models import NotifyEvent, WebhookChannelCreate
from tekoa.security import key_provider_for
from tekoa.services import notifications as service
from tests.fakes.telegram import FakeTelegram
from tests.integration.api.auth_support import CHEAP_HASHING
from tests.integration.api.trading_support import new_user

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def settings(aws_settings: Any, database_url: str, telegram: FakeTelegram) -> Any:
    return aws_settings.model_copy(
        update={
            "database_url": database_url,
            **CHEAP_HASHING,
            "telegram_api_url": telegram.url,
            "notify_retry_base_s": 1,
        }
    )


@pytest.fixture
def notifier(settings: Any) -> Iterator[Notifier]:
    database = PooledDatabase(settings.database_url, max_size=2)
    yield Notifier(database, key_provider_for(settings), settings, SqsRetryQueue(settings))
    database.close()


def _telegram(api: httpx.Client, caller: Any, events: list[str] | None = None) -> dict[str, Any]:
    body = {
        "kind": "telegram",
        "name": "phone",
        "chat_id": "-1001234",
        "bot_token": TOKEN,
        "events": events or ["fills"],
    }
    response = api.post("/v1/notification-channels", json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    channel: dict[str, Any] = response.json()["channel"]
    return channel


def _fill(user_id: Any, **fields: Any) -> dict[str, Any]:
    return {
        "user_id": str(user_id),
        "bot_id": None,
        "order_id": str(uuid.uuid4()),
        "exchange": "simulated",
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "market",
        "status": "filled",
        "filled_quantity": "0.01",
        "average_price": "65000.5",
        "mode": "paper",
        "reason": "",
        **fields,
    }


def test_the_bot_token_is_sealed_and_never_shown_and_channels_are_private(
    api: httpx.Client, settings: Any
) -> None:
    alice, bob = new_user(api), new_user(api)
    channel = _telegram(api, alice)
    assert channel["hint"] == "…saw0" and channel["target"] == "-1001234" and channel["events"] == ["fills"]
    listed = api.get("/v1/notification-channels", headers=alice.headers)
    assert TOKEN not in listed.text and [c["id"] for c in listed.json()] == [channel["id"]]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        stored = conn.execute("SELECT ciphertext, target FROM notification_channels").fetchone()
    assert stored is not None and TOKEN.encode() not in bytes(stored[0])

    url = f"/v1/notification-channels/{channel['id']}"
    assert api.get("/v1/notification-channels", headers=bob.headers).json() == []
    assert api.get(url, headers=bob.headers).status_code == 404
    assert api.patch(url, json={"enabled": False}, headers=bob.headers).status_code == 404
    assert api.post(f"{url}/test", headers=bob.headers).status_code == 404
    assert api.delete(url, headers=bob.headers).status_code == 404
    assert api.get(url, headers=alice.headers).json()["enabled"] is True


def test_bad_channels_are_refused_at_the_door(api: httpx.Client) -> None:
    alice = new_user(api)
    cases = [
        (
            {
                "kind": "telegram",
                "name": "x",
                "chat_id": "not a chat",
                "bot_token": TOKEN,
                "events": ["fills"],
            },
            "chat_id",
        ),
        ({"kind": "telegram", "name": "x", "chat_id": "42", "bot_token": TOKEN, "events": []}, "events"),
        (
            {"kind": "telegram", "name": "x", "chat_id": "42", "bot_token": TOKEN, "events": ["everything"]},
            "events",
        ),
        ({"kind": "webhook", "name": "x", "url": "http://127.0.0.1:9/hook", "events": ["fills"]}, "url"),
        ({"kind": "webhook", "name": "x", "url": "https://10.0.0.1/hook", "events": ["fills"]}, "url"),
        ({"kind": "pigeon", "name": "x", "events": ["fills"]}, "kind"),
    ]
    for body, field in cases:
        response = api.post("/v1/notification-channels", json=body, headers=alice.headers)
        assert response.status_code == 422, (body, response.text)
        detail = response.json()["detail"]
        assert field in (detail["field"] or detail["message"]), (body, detail)


def test_a_test_message_and_a_fill_reach_the_telegram_chat(
    api: httpx.Client, telegram: FakeTelegram, notifier: Notifier
) -> None:
    alice = new_user(api)
    channel = _telegram(api, alice, ["fills", "stop_hit"])
    tested = api.post(f"/v1/notification-channels/{channel['id']}/test", headers=alice.headers)
    assert tested.json() == {"delivered": True, "error": None}

    assert notifier.event(EventType.ORDER_FILLED, _fill(alice.user_id)) == 1
    assert notifier.event(EventType.ORDER_FILLED, _fill(alice.user_id, type="stop")) == 1
    assert notifier.event(EventType.ORDER_FILLED, _fill(uuid.uuid4())) == 0  # somebody else's fill
    test_message, fill, stop = telegram.wait_for_messages(3)
    assert (test_message.token, test_message.chat_id) == (TOKEN, "-1001234")
    assert fill.text == "Bought 0.01 BTC/USDT at 65000.5 (paper simulated)"
    assert stop.text.startswith("Stop hit: Bought 0.01 BTC/USDT")


def test_a_failing_endpoint_is_retried_with_backoff_then_reported_in_the_activity_feed(
    api: httpx.Client, telegram: FakeTelegram, notifier: Notifier, settings: Any
) -> None:
    alice = new_user(api)
    channel = _telegram(api, alice)
    telegram.fail_next(1)
    assert notifier.event(EventType.ORDER_FILLED, _fill(alice.user_id)) == 1
    assert telegram.failed == 1 and telegram.messages == []

    # The retry queue holds it back for notify_retry_base_s, then hands it to the notify handler.
    retries = notify_retries(
        settings,
        handler=lambda event, _ctx: [
            notifier.retry(Notification.model_validate_json(r["body"])) for r in event["Records"]
        ],
    )
    started = time.monotonic()
    while not telegram.messages and time.monotonic() - started < 15:
        retries.poll_once()
        time.sleep(0.05)
    assert len(telegram.wait_for_messages(1, timeout_s=1)) == 1
    assert time.monotonic() - started >= 0.5  # not before its delay

    # The last attempt failing is written to the activity feed.
    telegram.fail_next(1)
    last = Notification(
        user_id=alice.user_id,
        channel_id=uuid.UUID(channel["id"]),
        event=NotifyEvent.FILLS,
        text="x",
        attempt=MAX_ATTEMPTS - 1,
    )
    assert notifier.deliver(last) is False
    activity = api.get("/v1/activity", headers=alice.headers).json()["items"]
    assert activity[0]["level"] == "error"
    assert activity[0]["message"] == f"Notification not delivered after {MAX_ATTEMPTS} attempts: HTTP 500"


def test_a_webhook_post_is_signed_with_a_timestamp(
    api: httpx.Client, telegram: FakeTelegram, notifier: Notifier, settings: Any
) -> None:
    alice = new_user(api)
    # A loopback receiver: allowed where the platform runs locally (the API refuses it here).
    created = service.create_channel(
        notifier.database,
        notifier.key_provider,
        settings.model_copy(update={"notify_allow_insecure_urls": True}),
        alice.user_id,
        WebhookChannelCreate(
            kind="webhook", name="hook", url=f"{telegram.url}/hook", events=[NotifyEvent.FILLS]
        ),
    )
    assert created.signing_secret is not None and created.channel.hint.endswith(created.signing_secret[-4:])
    assert notifier.event(EventType.ORDER_FILLED, _fill(alice.user_id)) == 1
    (call,) = telegram.webhooks
    timestamp = int(call.headers["x-tekoa-timestamp"])
    assert abs(timestamp - time.time() * 1000) < 60_000
    expected = hmac.new(created.signing_secret.encode(), f"{timestamp}.".encode() + call.body, hashlib.sha256)
    assert call.headers["x-tekoa-signature"] == "sha256=" + expected.hexdigest()
    assert b'"event":"fills"' in call.body and b"user_id" not in call.body


def test_the_daily_summary_reaches_only_the_channels_that_chose_it(
    api: httpx.Client, telegram: FakeTelegram, notifier: Notifier
) -> None:
    alice, bob = new_user(api), new_user(api)
    _telegram(api, alice, ["daily_summary"])
    _telegram(api, bob, ["fills"])
    assert notifier.daily_summaries() == 1
    (message,) = telegram.wait_for_messages(1)
    assert message.text == "Daily summary: no trades closed in the last 24 hours."
