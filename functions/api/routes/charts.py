"""/v1/charts and /v1/bots/{id}/chart: chart images of a market or a bot, as short-lived URLs.

A chart is a PNG rendered by the chart function into S3 and named by its content. Asking for
one answers **200** with `url` when the identical chart exists already, or **202** with its
`id` (and `Location: /v1/charts/{id}`) while it renders — poll `GET /v1/charts/{id}` until
`status` is `ready`. `url` is a presigned GET that expires at `url_expires_at` (at most 15
minutes after it was made); ask again for a fresh one. Only the chart's owner gets a URL:
another user's chart id is a 404. Bad input is a 422 naming the field: an unknown indicator or
params its catalogue entry refuses, an oscillator asked for as an overlay, a range of more
than 1000 candles (`RANGE_TOO_LONG`) or without stored candles; a bot that is not yours is a
404. Asking again is always safe: identical requests share one chart.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from functions.api.context import Context
from functions.api.errors import error_responses
from functions.api.security import CurrentUser
from tekoa.charts.spec import MAX_BARS, ChartIndicator, ChartSize, ChartStyle
from tekoa.services import charts as service
from tekoa.services.charts import ChartRequest, ChartView

router = APIRouter(tags=["charts"])


class ChartOut(BaseModel):
    """A chart: what it shows, whether its image is ready, and a URL to it when it is."""

    id: UUID
    status: Literal["pending", "ready", "failed"] = Field(
        description="`pending` while it renders; `ready` comes with `url`; `failed` with `error`."
    )
    url: str | None = Field(description="Presigned GET of the PNG; null unless ready.")
    url_expires_at: int | None = Field(description="UTC ms after which `url` stops working.")
    exchange: str
    symbol: str
    timeframe: str
    start: int = Field(description="Open time of the first candle drawn (UTC ms).")
    end: int = Field(description="Candles opening before this are drawn (UTC ms).")
    bars: int
    bot_id: UUID | None
    overlays: list[ChartIndicator]
    panels: list[ChartIndicator]
    volume: bool
    style: ChartStyle
    size: ChartSize
    width: int = Field(description="PNG width in pixels.")
    height: int = Field(description="PNG height in pixels.")
    error: str | None = Field(description="Why rendering failed (status `failed`).")
    created_at: int = Field(description="UTC ms.")
    rendered_at: int | None = Field(description="UTC ms; null unless ready.")

    @classmethod
    def of(cls, view: ChartView) -> ChartOut:
        chart = view.chart
        document = chart.document
        layout = document.layout
        ready = view.url is not None
        return cls(
            id=chart.id,
            status="ready" if ready else ("failed" if chart.status == "failed" else "pending"),
            url=view.url,
            url_expires_at=view.expires_at,
            exchange=document.exchange,
            symbol=document.symbol,
            timeframe=document.timeframe.value,
            start=document.start,
            end=document.end,
            bars=document.bars,
            bot_id=document.bot_id,
            overlays=layout.overlays,
            panels=layout.panels,
            volume=layout.volume,
            style=layout.style,
            size=layout.size,
            width=layout.pixels.width,
            height=layout.pixels.height,
            error=chart.error,
            created_at=_millis(chart.created_at),
            rendered_at=None if chart.rendered_at is None or not ready else _millis(chart.rendered_at),
        )


def _millis(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def _respond(view: ChartView) -> JSONResponse:
    body = ChartOut.of(view).model_dump(mode="json")
    if view.ready:
        return JSONResponse(body, status_code=200)
    return JSONResponse(
        body, status_code=202, headers={"Location": f"/v1/charts/{view.chart.id}", "Retry-After": "1"}
    )


_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": ChartOut, "description": "The identical chart is rendered: `url` is set."},
    202: {"model": ChartOut, "description": "Rendering: poll `Location` until `status` is `ready`."},
}


@router.post(
    "/v1/charts",
    status_code=202,
    response_model=ChartOut,
    responses={**_ANSWERS, **error_responses(401, 404, 422)},
)
def request_chart(body: ChartRequest, principal: CurrentUser, context: Context) -> JSONResponse:
    """Ask for a chart of a market (or of one of your bots, with its trades and open position)."""
    return _respond(service.request_chart(context.charts, principal.user_id, body))


@router.get("/v1/charts/{chart_id}", response_model=ChartOut, responses=error_responses(401, 404, 422))
def get_chart(chart_id: UUID, principal: CurrentUser, context: Context) -> ChartOut:
    """One of your charts: its status, and a fresh URL when it is ready."""
    return ChartOut.of(service.get_chart(context.charts, principal.user_id, chart_id))


@router.get(
    "/v1/bots/{bot_id}/chart",
    status_code=202,
    response_model=ChartOut,
    responses={**_ANSWERS, **error_responses(401, 404, 422)},
)
def bot_chart(
    bot_id: UUID,
    principal: CurrentUser,
    context: Context,
    style: ChartStyle = Query(ChartStyle.LIGHT),
    size: ChartSize = Query(ChartSize.WEB),
    bars: Annotated[
        int | None, Query(ge=1, le=MAX_BARS, description="Candles to show (default 200).")
    ] = None,
) -> JSONResponse:
    """Your bot's chart: its market's latest candles, its trades and its open position."""
    request = service.bot_chart_request(bot_id, style=style, size=size, bars=bars)
    return _respond(service.request_chart(context.charts, principal.user_id, request))
