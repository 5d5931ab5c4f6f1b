"""Fan-out: a platform event becomes messages, pushed to the connections allowed to see them.

* Market events (`candle.closed`, and the market stream's forming candles) go to the
  connections subscribed to that market channel; market data is public.
* A user's events carry `user_id`: they go to that user's connections only — a bot's events to
  those subscribed to the bot (or to all bots), the others (balances, risk, manual orders,
  backtests) to all of them. The recipient query filters on the event's owner; nothing else
  decides who receives what.
* A platform event without an owner (a platform-wide `risk.tripped`) is a `system_alert` to all.

Connections the management API reports gone, and connections whose session has ended (signed
out, token revoked, account disabled, expired), are closed and forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from tekoa.aws.push import ConnectionPusher, PushResult
from tekoa.db import positions as position_rows
from tekoa.db import ws_connections as rows
from tekoa.db.connection import Database, service_transaction, tenant_transaction
from tekoa.names import EventType
from tekoa.observability import logger
from tekoa.realtime.messages import MessageType, market_channel, message_text


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Messages for one audience: a market channel, or one user (optionally one bot of theirs)."""

    messages: tuple[str, ...]
    channel: str | None = None
    user_id: UUID | None = None
    bot_id: UUID | None = None
    everyone: bool = False


@dataclass(slots=True)
class FanOutReport:
    """What one fan-out did (counts of connections)."""

    delivered: int = 0
    gone: int = 0
    failed: int = 0
    closed: int = 0
    messages: list[str] = field(default_factory=list)

    def add(self, result: PushResult) -> None:
        self.delivered += len(result.delivered)
        self.gone += len(result.gone)
        self.failed += len(result.failed)


def _owner(detail: dict[str, Any]) -> UUID | None:
    value = detail.get("user_id")
    return None if value is None else UUID(str(value))


def _bot(detail: dict[str, Any]) -> UUID | None:
    value = detail.get("bot_id")
    return None if value is None else UUID(str(value))


def _public(detail: dict[str, Any]) -> dict[str, Any]:
    """The detail as its owner sees it (their own id is no news to them)."""
    return {key: value for key, value in detail.items() if key != "user_id"}


def candle_data(detail: dict[str, Any], *, closed: bool) -> dict[str, Any]:
    """A `candle_update`'s data from a candle event's detail."""
    return {**detail, "closed": closed}


PositionLookup = Callable[[dict[str, Any]], dict[str, Any] | None]
"""The position an `order.filled` moved (as its owner sees it), or None when there is none."""


def outgoing_for(
    detail_type: str, detail: dict[str, Any], position_of: PositionLookup | None = None
) -> list[Outgoing]:
    """What an event on the bus becomes (empty: nothing a client is shown)."""
    if detail_type == EventType.CANDLE_CLOSED:
        channel = market_channel(detail["exchange"], detail["symbol"], detail["timeframe"])
        text = message_text(MessageType.CANDLE_UPDATE, candle_data(detail, closed=True))
        return [Outgoing((text,), channel=channel)]
    owner = _owner(detail)
    if owner is None:
        if detail_type == EventType.RISK_TRIPPED:
            return [Outgoing((message_text(MessageType.SYSTEM_ALERT, detail),), everyone=True)]
        return []
    data, bot_id = _public(detail), _bot(detail)
    if detail_type == EventType.ORDER_FILLED:
        messages = [message_text(MessageType.TRADE_EXECUTED, data)]
        position = position_of(detail) if position_of is not None else None
        if position is not None:
            messages.append(message_text(MessageType.POSITION_UPDATE, position))
        return [Outgoing(tuple(messages), user_id=owner, bot_id=bot_id)]
    message_type = _USER_EVENTS.get(detail_type)
    if message_type is None:
        return []
    return [Outgoing((message_text(message_type, data),), user_id=owner, bot_id=bot_id)]


_USER_EVENTS: dict[str, MessageType] = {
    EventType.ORDER_UPDATED: MessageType.ORDER_UPDATE,
    EventType.BOT_STATUS_CHANGED: MessageType.BOT_STATUS_CHANGED,
    EventType.RISK_TRIPPED: MessageType.RISK_ALERT,
    EventType.EVALUATION_RECORDED: MessageType.SIGNAL_GENERATED,
    EventType.BACKTEST_PROGRESS: MessageType.BACKTEST_PROGRESS,
}


def position_lookup(database: Database) -> PositionLookup:
    """The `PositionLookup` reading the position an `order.filled` event's order moved."""

    def position_of(detail: dict[str, Any]) -> dict[str, Any] | None:
        owner, account = detail.get("user_id"), detail.get("account_id")
        if owner is None or account is None or detail.get("symbol") is None:
            return None
        user_id = UUID(str(owner))
        with database.connection() as conn, tenant_transaction(conn, user_id):
            position = position_rows.latest_position(
                conn, user_id, UUID(str(account)), str(detail["symbol"]), _bot(detail)
            )
        return None if position is None else position.model_dump(mode="json")

    return position_of


class FanOut:
    """Pushes what events become to their audiences (see the module docstring)."""

    def __init__(
        self, database: Database, pusher: ConnectionPusher, position_of: PositionLookup | None = None
    ) -> None:
        self.database = database
        self.pusher = pusher
        self.position_of = position_of

    def event(self, detail_type: str, detail: dict[str, Any]) -> FanOutReport:
        """Push one bus event to everyone allowed to see it."""
        return self.push(outgoing_for(detail_type, detail, self.position_of))

    def push(self, outgoing: Sequence[Outgoing]) -> FanOutReport:
        """Push prepared messages to their audiences."""
        if not outgoing:
            return FanOutReport()
        with self.database.connection() as conn, service_transaction(conn):
            audiences = [self._recipients(conn, item) for item in outgoing]
        return self.deliver(list(zip(outgoing, audiences, strict=True)))

    def deliver(self, audiences: Sequence[tuple[Outgoing, list[rows.Recipient]]]) -> FanOutReport:
        """Send each item's messages to its recipients; forget gone connections, close ended ones."""
        report = FanOutReport()
        dead: set[str] = set()
        gone: set[str] = set()
        for item, recipients in audiences:
            live = [r.connection_id for r in recipients if r.live and r.connection_id not in gone]
            dead.update(r.connection_id for r in recipients if not r.live)
            for text in item.messages:
                result = self.pusher.send(live, text.encode())
                report.add(result)
                report.messages.append(text)
                if result.gone:
                    gone.update(result.gone)
                    live = [connection_id for connection_id in live if connection_id not in gone]
        if dead:
            report.closed = len(dead)
            gone.update(self.pusher.close(sorted(dead)).gone)
        if gone or dead:
            with self.database.connection() as conn, service_transaction(conn):
                rows.delete_connections(conn, sorted(gone | dead))
            logger.info("connections forgotten", extra={"gone": len(gone), "ended": len(dead)})
        return report

    @staticmethod
    def _recipients(conn: Any, item: Outgoing) -> list[rows.Recipient]:
        if item.channel is not None:
            return rows.market_recipients(conn, [item.channel]).get(item.channel, [])
        if item.user_id is not None:
            return rows.owner_recipients(conn, item.user_id, bot_id=item.bot_id)
        if item.everyone:
            return rows.live_recipients(conn)
        return []
