"""Forming candles to WebSocket subscribers, straight from the market stream.

About once a second (`forming_candle_every_s`) each market channel someone subscribed to gets
its forming candle as a `candle_update` (`closed: false`). They go straight to `@connections`,
not through the bus: a message per market per second would be most of the bus's bill, and a
forming candle is stale a second later, so there is nothing to retry. Closed candles go through
the bus (`candle.closed`) like every other event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from tekoa.db import ws_connections as rows
from tekoa.db.connection import service_transaction
from tekoa.domain.candles import Candle
from tekoa.domain.timeframes import Timeframe
from tekoa.market.stream.outbox import candle_event
from tekoa.observability import logger
from tekoa.realtime.fanout import FanOut, Outgoing, candle_data
from tekoa.realtime.messages import MessageType, message_text, parse_market_channel

FormingLookup = Callable[[str, Timeframe], Candle | None]
"""The forming candle of (symbol, timeframe), None while its bucket has no trade."""


class FormingCandles:
    """Pushes `exchange`'s forming candles to their subscribers every `every_s` seconds."""

    def __init__(self, exchange: str, forming: FormingLookup, fan_out: FanOut, every_s: float) -> None:
        self.exchange = exchange
        self.forming = forming
        self.fan_out = fan_out
        self.every_s = every_s
        self.pushed = 0

    def push_once(self) -> int:
        """One round: every subscribed market of the exchange; messages sent."""
        with self.fan_out.database.connection() as conn, service_transaction(conn):
            subscribed = rows.subscribed_markets(conn, self.exchange)
        audiences = []
        for channel, recipients in subscribed.items():
            market = parse_market_channel(channel)
            candle = None if market is None else self.forming(market[1], market[2])
            if candle is not None:
                text = message_text(
                    MessageType.CANDLE_UPDATE, candle_data(candle_event(candle).detail, closed=False)
                )
                audiences.append((Outgoing((text,), channel=channel), recipients))
        if audiences:
            report = self.fan_out.deliver(audiences)
            self.pushed += report.delivered
        return len(audiences)

    def run(self, stopping: threading.Event) -> None:
        """Push every `every_s` until `stopping` is set; a failed round is logged and the next one
        tried. Run it in a daemon thread: a round stuck on a dying database or gateway must not
        hold up the service's exit."""
        while not stopping.wait(self.every_s):
            try:
                self.push_once()
            except Exception:
                logger.exception("pushing forming candles failed", extra={"exchange": self.exchange})
