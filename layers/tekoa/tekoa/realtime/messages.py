"""The WebSocket protocol: what clients send, what they receive, and the channels between.

Every message a client receives is one JSON object `{"type": ..., "ts": ..., "data": {...}}`
(`ts`: milliseconds since the epoch when the platform sent it). Clients send
`{"action": "subscribe" | "unsubscribe" | "ping", ...}` (API Gateway routes on `action`).

A connection's subscriptions are channel names:

* `market:<exchange>:<symbol>:<timeframe>`: public market data (`price`, `candle_update`);
* `bot:<bot id>`: one of the user's own bots; `bot:*`: all of them.

A user's events that belong to no bot (balances, risk, manual orders) reach every connection of
that user; a bot's events reach the user's connections subscribed to that bot (or to `*`).
Nothing of a user ever reaches another user's connection.
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from tekoa.domain.exchanges import ExchangeId
from tekoa.domain.symbols import Symbol
from tekoa.domain.timeframes import Timeframe

ROUTES = ("subscribe", "unsubscribe", "ping")
"""The WebSocket API's routes besides $connect, $disconnect and $default (selected on `action`)."""
ALL_BOTS = "bot:*"
MAX_CHANNELS_PER_CONNECTION = 100
"""The database refuses more (ws_connections.channels); the route handler says so first."""


class MessageType(StrEnum):
    """`type` of a message pushed to a client."""

    PRICE = "price"
    CANDLE_UPDATE = "candle_update"
    SIGNAL_GENERATED = "signal_generated"
    TRADE_EXECUTED = "trade_executed"
    ORDER_UPDATE = "order_update"
    POSITION_UPDATE = "position_update"
    BALANCE_UPDATE = "balance_update"
    BOT_STATUS_CHANGED = "bot_status_changed"
    RISK_ALERT = "risk_alert"
    SYSTEM_ALERT = "system_alert"
    BACKTEST_PROGRESS = "backtest_progress"
    # Answers to the client's own requests.
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    PONG = "pong"
    ERROR = "error"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def message_text(message_type: MessageType, data: dict[str, Any], ts: int | None = None) -> str:
    """One message as the client receives it (compact JSON text)."""
    return json.dumps(
        {"type": message_type.value, "ts": now_ms() if ts is None else ts, "data": data},
        separators=(",", ":"),
    )


def error_text(code: str, message: str, field: str | None = None) -> str:
    """An `error` message, shaped like the REST API's error detail."""
    return message_text(MessageType.ERROR, {"code": code, "message": message, "field": field})


def market_channel(exchange: str, symbol: str, timeframe: str) -> str:
    return f"market:{exchange}:{symbol}:{timeframe}"


def bot_channel(bot_id: UUID | str) -> str:
    return f"bot:{bot_id}"


def market_channels(exchange: str, symbol: str) -> list[str]:
    """Every channel of one market (one per timeframe): a price reaches them all."""
    return [market_channel(exchange, symbol, timeframe.value) for timeframe in Timeframe]


def market_prefix(exchange: str) -> str:
    """The prefix every market channel of `exchange` starts with."""
    return f"market:{exchange}:"


def parse_market_channel(channel: str) -> tuple[str, str, Timeframe] | None:
    """(exchange, symbol, timeframe) of a market channel; None for any other channel."""
    kind, _, rest = channel.partition(":")
    exchange, _, rest = rest.partition(":")
    symbol, _, timeframe = rest.rpartition(":")
    if kind != "market" or not exchange or not symbol:
        return None
    try:
        return exchange, symbol, Timeframe(timeframe)
    except ValueError:
        return None


# -- what clients send ------------------------------------------------------------------------


class MarketSubscription(BaseModel):
    """A market's public data: the price and the candles of one timeframe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exchange: ExchangeId
    symbol: Symbol
    timeframe: Timeframe = Timeframe.M1

    @property
    def channel(self) -> str:
        return market_channel(self.exchange, self.symbol, self.timeframe.value)


BotSelector = UUID | Literal["*"]


class SubscriptionRequest(BaseModel):
    """`subscribe` or `unsubscribe`: markets and/or bots (`"*"`: all of the caller's bots)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["subscribe", "unsubscribe"]
    markets: list[MarketSubscription] = Field(default_factory=list, max_length=20)
    bots: list[BotSelector] = Field(default_factory=list, max_length=50)

    def bot_ids(self) -> list[UUID]:
        return [bot for bot in self.bots if isinstance(bot, UUID)]

    def channels(self) -> list[str]:
        """The channel names this request names, in order, without repeats."""
        names = [market.channel for market in self.markets]
        names += [ALL_BOTS if bot == "*" else bot_channel(bot) for bot in self.bots]
        return list(dict.fromkeys(names))


class PingRequest(BaseModel):
    """`ping`: keeps an idle connection open (API Gateway closes it after 10 idle minutes)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["ping"]


ClientRequest = Annotated[SubscriptionRequest | PingRequest, Field(discriminator="action")]
CLIENT_REQUEST: TypeAdapter[SubscriptionRequest | PingRequest] = TypeAdapter(ClientRequest)


def subscriptions_view(channels: list[str]) -> dict[str, Any]:
    """A connection's subscriptions as `subscribed` / `unsubscribed` answers show them."""
    markets = []
    bots: list[str] = []
    for channel in channels:
        market = parse_market_channel(channel)
        if market is not None:
            exchange, symbol, timeframe = market
            markets.append({"exchange": exchange, "symbol": symbol, "timeframe": timeframe.value})
        elif channel.startswith("bot:"):
            bots.append(channel.removeprefix("bot:"))
    return {"markets": markets, "bots": bots}
