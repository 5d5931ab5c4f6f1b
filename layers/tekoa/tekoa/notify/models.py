"""Notification channels as the API takes and shows them (no I/O)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator

from tekoa.domain.text import Name
from tekoa.errors import NotFound


class NotifyEvent(StrEnum):
    """What a channel may be told about."""

    FILLS = "fills"
    STOP_HIT = "stop_hit"
    RISK_TRIPPED = "risk_tripped"
    BOT_ERROR = "bot_error"
    DAILY_SUMMARY = "daily_summary"


class ChannelKind(StrEnum):
    TELEGRAM = "telegram"
    WEBHOOK = "webhook"


Events = Annotated[
    list[NotifyEvent],
    Field(min_length=1, max_length=len(NotifyEvent), description="What this channel is told about."),
]
ChatId = Annotated[
    str,
    StringConstraints(pattern=r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$"),
    Field(description="The Telegram chat: a numeric id or @channelusername."),
]
BotToken = Annotated[
    SecretStr,
    Field(description="The Telegram bot's token (from @BotFather); stored encrypted, never shown again."),
]
_BOT_TOKEN = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{20,100}")


class TelegramChannelCreate(BaseModel):
    """A Telegram chat a bot of yours writes to."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["telegram"]
    name: Name
    chat_id: ChatId
    bot_token: BotToken
    events: Events

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not _BOT_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("must look like 123456789:AA… (the token @BotFather gave you)")
        return value

    @property
    def target(self) -> str:
        return self.chat_id


class WebhookChannelCreate(BaseModel):
    """A URL that receives a signed POST per notification."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["webhook"]
    name: Name
    url: Annotated[
        str,
        StringConstraints(min_length=8, max_length=2048, pattern=r"^https?://[!-~]+$"),
        Field(description="http(s) URL of printable ASCII (percent-encode anything else)."),
    ]
    events: Events

    @property
    def target(self) -> str:
        return self.url


ChannelCreate = Annotated[TelegramChannelCreate | WebhookChannelCreate, Field(discriminator="kind")]


class ChannelUpdate(BaseModel):
    """What may change on a channel; omitted fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    events: Events | None = None
    enabled: bool | None = None


class NotificationChannel(BaseModel):
    """A channel as listed: its secret only as a hint."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    kind: ChannelKind
    name: str
    target: str = Field(description="The Telegram chat id, or the webhook URL.")
    events: list[NotifyEvent]
    enabled: bool
    hint: str = Field(description="The end of the bot token (Telegram) or signing secret (webhook).")
    created_at: datetime
    updated_at: datetime


class CreatedChannel(BaseModel):
    """A new channel; a webhook's signing secret is shown here once."""

    channel: NotificationChannel
    signing_secret: str | None = Field(
        None,
        description="Webhooks: the HMAC-SHA256 key of `X-Tekoa-Signature`; never shown again.",
    )


class TestResult(BaseModel):
    """What became of a test message."""

    delivered: bool
    error: str | None = None


class ChannelNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("no notification channel with this id")
