"""The chart function's logic: render a queued chart into S3, or a bot's chart when it closed a trade.

A render reads the chart's row (as its owner), the candles of its range plus the warm-up
history its indicators need, and for a bot chart the bot's trades and open position; draws the
PNG and puts it under the chart's content-addressed key; then marks the row ready. Delivery
is at least once, so a chart already rendered (row ready, object present) is skipped. A chart
that can never be drawn (its candles are gone) is marked failed and not retried; anything
else (database, S3) raises, and the queue retries it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

import psycopg

from tekoa.aws.charts import ChartObjects, ChartRequests
from tekoa.charts.messages import FilledOrder, order_filled_message
from tekoa.charts.render import PositionMark, TradeMark, render_candles
from tekoa.charts.spec import Chart, ChartDocument, ChartSize, ChartStyle
from tekoa.db import bots as bot_rows
from tekoa.db import candles as candle_rows
from tekoa.db import charts as rows
from tekoa.db.connection import Database, tenant_transaction
from tekoa.domain.trading import PositionSide, ProtectionState
from tekoa.engine.protection import from_state, stop_level
from tekoa.errors import NotFound, ValidationFailed
from tekoa.market.frame import CandleFrame
from tekoa.observability import logger
from tekoa.services.charts import bot_chart_request, claim_chart

CANDLE_GRACE_MS = 120_000
"""How long after its candle closed a closed trade waits for that candle to be stored (the
market stream writes a closed candle within seconds); after that it is drawn without it."""
MAX_DELAY_S = 900
"""SQS's longest message delay: a longer candle is waited for in several steps."""


class RenderOutcome(StrEnum):
    RENDERED = "rendered"
    ALREADY_RENDERED = "already_rendered"
    DEFERRED = "deferred"
    GONE = "gone"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class BotMarks:
    """A bot's trades in a chart's range and its open position."""

    trades: Sequence[TradeMark] = ()
    position: PositionMark | None = None


class ChartWorker:
    """Renders stored charts into the charts bucket."""

    def __init__(self, database: Database, objects: ChartObjects, requests: ChartRequests) -> None:
        self.database = database
        self.objects = objects
        self.requests = requests

    def render(self, user_id: UUID, chart_id: UUID) -> RenderOutcome:
        """Draw chart `chart_id` of `user_id` and store it; idempotent."""
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            chart = rows.get_chart(conn, user_id, chart_id)
        if chart is None:
            logger.warning("chart to render is gone", extra={"chart_id": str(chart_id)})
            return RenderOutcome.GONE
        if chart.status == "ready" and self.objects.exists(chart.object_key):
            return RenderOutcome.ALREADY_RENDERED
        frame, marks = self._data(chart)
        try:
            png = render_candles(
                frame,
                chart.document.layout,
                title=chart.document.title,
                start=chart.document.start,
                trades=marks.trades,
                position=marks.position,
            ).png
        except ValueError as exc:  # nothing to draw: retrying will not help
            with self.database.connection() as conn, tenant_transaction(conn, user_id):
                rows.mark_failed(conn, user_id, chart_id, str(exc))
            logger.warning("chart cannot be drawn", extra={"chart_id": str(chart_id), "reason": str(exc)})
            return RenderOutcome.FAILED
        self.objects.put(chart.object_key, png)
        with self.database.connection() as conn, tenant_transaction(conn, user_id):
            rows.mark_rendered(conn, user_id, chart_id)
        logger.info(
            "chart rendered",
            extra={"chart_id": str(chart_id), "bars": chart.document.bars, "bytes": len(png)},
        )
        return RenderOutcome.RENDERED

    def render_after_fill(self, filled: FilledOrder, *, now_ms: int | None = None) -> RenderOutcome | None:
        """Render the bot's chart if this fill closed one of its trades (else None).

        A chart ends at the last closed candle, so a trade that closed in a candle still
        forming would be missing from it: the event is put back on the queue until that candle
        is stored (DEFERRED), for at most CANDLE_GRACE_MS past its close.
        """
        if filled.bot_id is None:
            return None
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        with self.database.connection() as conn, tenant_transaction(conn, filled.user_id):
            closed_at = rows.closing_fill_time(conn, filled.user_id, filled.order_id)
            bot = None if closed_at is None else bot_rows.get_bot(conn, filled.user_id, filled.bot_id)
            if closed_at is None or bot is None:
                return None
            candle = bot.timeframe.open_time(closed_at)
            close = candle + bot.timeframe.ms
            stamp = rows.candle_stamp(conn, bot.exchange, bot.symbol, bot.timeframe.value, candle, close)
        if stamp.candles == 0 and now < close + CANDLE_GRACE_MS:
            delay_s = min(max((close - now) // 1000 + 5, 5), MAX_DELAY_S)
            self.requests.send(order_filled_message(filled), delay_s=delay_s)
            logger.info(
                "closed trade waits for its candle",
                extra={"bot_id": str(filled.bot_id), "delay_s": delay_s},
            )
            return RenderOutcome.DEFERRED
        request = bot_chart_request(filled.bot_id, style=ChartStyle.LIGHT, size=ChartSize.WEB, bars=None)
        try:
            chart, _ = claim_chart(self.database, filled.user_id, request, origin="trade_closed", now_ms=now)
        except (NotFound, ValidationFailed) as exc:  # the bot is gone, or it has no candles yet
            logger.info(
                "no chart for a closed trade", extra={"bot_id": str(filled.bot_id), "reason": str(exc)}
            )
            return None
        return self.render(filled.user_id, chart.id)

    def _data(self, chart: Chart) -> tuple[CandleFrame, BotMarks]:
        document = chart.document
        with self.database.connection() as conn, tenant_transaction(conn, chart.user_id):
            candles = candle_rows.read_candles(
                conn,
                document.exchange,
                document.symbol,
                document.timeframe,
                start_ms=document.history_start,
                end_ms=document.end,
                limit=(document.end - document.history_start) // document.timeframe.ms,
            )
            marks = BotMarks() if document.bot_id is None else bot_marks(conn, chart.user_id, document)
        return CandleFrame.from_candles(document.timeframe, candles), marks


def bot_marks(conn: psycopg.Connection[Any], user_id: UUID, document: ChartDocument) -> BotMarks:
    """The bot's trades that traded in the chart's range, as entry and exit markers (the
    first buy's time at the average entry, the last sell's at the average exit), and its
    open position's entry, stop in force and targets not yet hit."""
    assert document.bot_id is not None
    trades: list[TradeMark] = []
    position: PositionMark | None = None
    for row in rows.bot_positions(conn, user_id, document.bot_id, document.start, document.end):
        entry = float(row["average_entry"])
        if row["closed"]:
            exit_price = float(row["exit_value"] / row["exit_quantity"])
            trades.append(TradeMark("long", row["entry_time"], entry, row["exit_time"], exit_price))
            continue
        trades.append(TradeMark("long", row["entry_time"], entry))
        protection = None if row["protection"] is None else ProtectionState.model_validate(row["protection"])
        stop = math.nan if protection is None else stop_level(from_state(protection, PositionSide.LONG))
        position = PositionMark(
            "long",
            entry,
            opened_time=row["entry_time"],
            stop=None if math.isnan(stop) else stop,
            targets=()
            if protection is None
            else tuple(float(t.price) for t in protection.targets if not t.hit),
        )
    return BotMarks(trades, position)
