"""Charts for the API and the chart function: resolve a request, find or queue its image, hand
out a short-lived URL.

A chart request names a market (or a bot, whose market it takes), a range of closed candles,
the indicators to draw and a style and size. It is resolved into a `ChartDocument` — absolute
range, defaults filled in, and a stamp of the data it will be drawn from (candles, the bot's
fills) — whose digest names the image: `charts/<user_id>/<digest>.png`. An identical request
therefore finds the same row and, once rendered, the same object: it is answered at once with
a URL. Anything else is queued for the chart function and answered `pending`.

URLs are presigned GETs that expire after `chart_url_ttl_s` (≤ 15 min) and are only made for
a chart the caller owns (rows are read as the caller, under row-level security) whose object
exists. No numpy here: the API imports this module.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

import psycopg
from pydantic import Field, model_validator

from tekoa.aws.charts import ChartObjects, ChartRequests
from tekoa.charts.spec import (
    DEFAULT_BARS,
    MAX_BARS,
    Chart,
    ChartDocument,
    ChartLayout,
    ChartOrigin,
    ChartSize,
    ChartStyle,
    DataStamp,
    object_key,
)
from tekoa.db import bots as bot_rows
from tekoa.db import charts as rows
from tekoa.db.connection import Database, tenant_transaction
from tekoa.domain.exchanges import ExchangeId
from tekoa.domain.resources import Bot, BotNotFound
from tekoa.domain.symbols import Symbol
from tekoa.domain.timeframes import Timeframe
from tekoa.errors import NotFound, ValidationFailed
from tekoa.observability import logger

REQUEUE_AFTER = timedelta(minutes=2)
"""A chart pending for longer than this had its render request lost: it is queued again."""

Millis = Annotated[int, Field(ge=0, le=2**53, description="UTC milliseconds since the epoch.")]
Bars = Annotated[int, Field(ge=1, le=MAX_BARS, description=f"Number of candles (1-{MAX_BARS}).")]


class RangeTooLong(ValidationFailed):
    code = "RANGE_TOO_LONG"


class ChartNotFound(NotFound):
    """No chart with that id belongs to the caller."""

    def __init__(self) -> None:
        super().__init__("chart not found")


class ChartRequest(ChartLayout):
    """What to draw: a market (or a bot, whose market, trades and open position it shows), a
    range of closed candles, indicators, style and size."""

    exchange: ExchangeId | None = Field(None, description="Needed unless bot_id is given.")
    symbol: Symbol | None = Field(None, description="Needed unless bot_id is given.")
    timeframe: Timeframe | None = Field(None, description="Needed unless bot_id is given.")
    start: Millis | None = Field(None, description="First candle (ms); default: `bars` before `end`.")
    end: Millis | None = Field(None, description="Candles opening before this (ms); default: now.")
    bars: Bars | None = Field(
        None, description=f"Candles to show when `start` is not given ({DEFAULT_BARS})."
    )
    bot_id: UUID | None = Field(None, description="Draw this bot's trades and open position.")

    @model_validator(mode="after")
    def _market_or_bot(self) -> ChartRequest:
        if self.bot_id is None:
            for name in ("exchange", "symbol", "timeframe"):
                if getattr(self, name) is None:
                    raise ValueError(f"{name} is required unless bot_id is given")
        if self.start is not None and self.bars is not None:
            raise ValueError("give start or bars, not both")
        return self

    def layout(self) -> ChartLayout:
        return ChartLayout.model_validate(self.model_dump(include=set(ChartLayout.model_fields)))


@dataclass(frozen=True, slots=True)
class ChartView:
    """A chart as its owner sees it; `url` only when the image exists (and then until `expires_at`)."""

    chart: Chart
    url: str | None = None
    expires_at: int | None = None

    @property
    def ready(self) -> bool:
        return self.url is not None


@dataclass(frozen=True, slots=True)
class ChartPorts:
    """What the chart service talks to."""

    database: Database
    objects: ChartObjects
    requests: ChartRequests
    url_ttl_s: int


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def request_chart(
    ports: ChartPorts,
    user_id: UUID,
    request: ChartRequest,
    *,
    now_ms: int | None = None,
) -> ChartView:
    """The chart `request` describes: ready with a URL when its image exists, else queued.

    BotNotFound for a bot that is not the caller's; ValidationFailed (422) for a range without
    closed candles or a market other than the bot's; RangeTooLong (422) past MAX_BARS candles.
    """
    chart, created = claim_chart(ports.database, user_id, request, origin="api", now_ms=now_ms)
    return _serve(ports, chart, queue=True, created=created)


def claim_chart(
    database: Database,
    user_id: UUID,
    request: ChartRequest,
    *,
    origin: ChartOrigin,
    now_ms: int | None = None,
) -> tuple[Chart, bool]:
    """Resolve `request` and find, or store as pending, the user's chart of that content.
    Answers (chart, created)."""
    now = _now_ms() if now_ms is None else now_ms
    with database.connection() as conn, tenant_transaction(conn, user_id):
        bot = None
        if request.bot_id is not None:
            bot = bot_rows.get_bot(conn, user_id, request.bot_id)
            if bot is None:
                raise BotNotFound()
        document = resolve(conn, user_id, request, bot, now)
        digest = document.digest()
        return rows.claim_chart(
            conn,
            user_id,
            chart_id=uuid.uuid4(),
            digest=digest,
            object_key=object_key(user_id, digest),
            document=document,
            origin=origin,
        )


def get_chart(ports: ChartPorts, user_id: UUID, chart_id: UUID) -> ChartView:
    """One of the caller's charts, with a URL when its image exists; ChartNotFound otherwise.

    A chart whose image has expired, or whose render request was lost, is queued again.
    """
    with ports.database.connection() as conn, tenant_transaction(conn, user_id):
        chart = rows.get_chart(conn, user_id, chart_id)
    if chart is None:
        raise ChartNotFound()
    return _serve(ports, chart, queue=False, created=False)


def bot_chart_request(bot_id: UUID, *, style: ChartStyle, size: ChartSize, bars: int | None) -> ChartRequest:
    """The chart of a bot: its market and timeframe, its trades and open position, with volume."""
    return ChartRequest(bot_id=bot_id, style=style, size=size, bars=bars)


def _serve(ports: ChartPorts, chart: Chart, *, queue: bool, created: bool) -> ChartView:
    """Hand out the image, or make sure it is on its way.

    `queue` (a request for the chart, not just a look at it) also re-queues a failed chart.
    """
    if chart.status == "ready":
        if ports.objects.exists(chart.object_key):
            expires = _now_ms() + ports.url_ttl_s * 1000
            return ChartView(chart, ports.objects.url(chart.object_key), expires)
        logger.info("chart image expired; rendering again", extra={"chart_id": str(chart.id)})
    stale = chart.status == "pending" and datetime.now(UTC) - chart.queued_at > REQUEUE_AFTER
    if created or chart.status == "ready" or stale or (queue and chart.status == "failed"):
        if not created:
            with ports.database.connection() as conn, tenant_transaction(conn, chart.user_id):
                rows.mark_queued(conn, chart.user_id, chart.id)
                chart = rows.get_chart(conn, chart.user_id, chart.id) or chart
        ports.requests.send(render_message(chart))
    return ChartView(chart)


def render_message(chart: Chart) -> dict[str, Any]:
    """The chart queue's message asking for `chart` to be rendered."""
    return {"kind": "render", "chart_id": str(chart.id), "user_id": str(chart.user_id)}


def _ceil(ms: int, timeframe: Timeframe) -> int:
    return -(-ms // timeframe.ms) * timeframe.ms


def resolve(
    conn: psycopg.Connection[Any], user_id: UUID, request: ChartRequest, bot: Bot | None, now_ms: int
) -> ChartDocument:
    """`request` as an absolute chart of closed candles, with the stamp of the data it shows.

    Candles drawn open in `[start, end)` and have closed by `now_ms`. `end` (default now) is
    rounded up to the timeframe and `start` down, so requests within one candle resolve alike.
    A bot chart's stamp also counts the bot's fills and its positions' last change (a stop
    moved, a target hit), so a new trade or a moved stop is a new chart.
    """
    exchange, symbol, timeframe = request.exchange, request.symbol, request.timeframe
    if bot is not None:
        for name, given, own in (
            ("exchange", exchange, bot.exchange),
            ("symbol", symbol, bot.symbol),
            ("timeframe", timeframe, bot.timeframe),
        ):
            if given is not None and given != own:
                raise ValidationFailed(f"{name} must be the bot's ({own}) or left out", field=name)
        exchange, symbol, timeframe = bot.exchange, bot.symbol, bot.timeframe
    # The model insists on all three without a bot.
    assert exchange is not None
    assert symbol is not None
    assert timeframe is not None
    closed_end = timeframe.open_time(now_ms)
    end = min(_ceil(request.end, timeframe), closed_end) if request.end is not None else closed_end
    if request.start is not None:
        start = timeframe.open_time(request.start)
        field = "start"
    else:
        start = end - (request.bars or DEFAULT_BARS) * timeframe.ms
        field = "bars"
    if start >= end:
        raise ValidationFailed(
            "the range holds no closed candle", field="start" if field == "start" else "end"
        )
    bars = (end - start) // timeframe.ms
    if bars > MAX_BARS:
        raise RangeTooLong(
            f"the range spans {bars} {timeframe.value} candles; a chart shows at most {MAX_BARS}", field=field
        )
    unstamped = ChartDocument(
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        start=start,
        end=end,
        layout=request.layout(),
        bot_id=None if bot is None else bot.id,
        data=DataStamp(candles=0),
    )
    stamp = rows.candle_stamp(conn, exchange, symbol, timeframe.value, unstamped.history_start, end)
    if stamp.last is None or stamp.last < start:
        raise ValidationFailed(
            f"no stored {timeframe.value} candles of {symbol} on {exchange} in that range", field="start"
        )
    if bot is not None:
        fills, activity = rows.bot_stamp(conn, user_id, bot.id)
        stamp = stamp.model_copy(update={"fills": fills, "activity": activity})
    return unstamped.model_copy(update={"data": stamp})
