"""GET /health: can the API reach its database and AWS, and is market data ready?"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from functions.api.context import Context
from tekoa.aws.clients import aws_client
from tekoa.observability import logger
from tekoa.services import market_data

router = APIRouter(tags=["health"])


class DependencyHealth(BaseModel):
    ok: bool
    latency_ms: float
    error: str | None = None


class MarketState(BaseModel):
    fresh: bool
    reason: str | None = Field(description="Why not fresh (e.g. the stream is still loading history).")


class MarketHealth(DependencyHealth):
    exchange: str
    markets: dict[str, MarketState] = Field(
        default_factory=dict, description="The markets the stream always follows, by symbol."
    )


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: DependencyHealth
    aws: DependencyHealth
    market: MarketHealth = Field(
        description="Market data is ready when every market the stream always follows is fresh: "
        "whole history, live trades, a recent candle. Not ready while the stream starts."
    )


def _probe(name: str, check: Callable[[], None]) -> DependencyHealth:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        logger.warning("health probe failed", extra={"dependency": name, "error_type": type(exc).__name__})
        return DependencyHealth(
            ok=False, latency_ms=(time.perf_counter() - started) * 1000, error=type(exc).__name__
        )
    return DependencyHealth(ok=True, latency_ms=round((time.perf_counter() - started) * 1000, 2))


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(context: Context) -> JSONResponse:
    """Database and AWS reachability and market-data readiness; 503 when any is not ok."""
    settings = context.settings

    def database() -> None:
        with context.database.connection() as conn:
            conn.execute("SELECT 1").fetchone()

    def aws() -> None:
        sqs = aws_client("sqs", settings)
        sqs.get_queue_url(QueueName=settings.names.order_queue)

    markets: list[market_data.LastPrice] = []

    def market() -> None:
        markets.extend(market_data.streamed_markets(context.database, settings))

    market_probe = _probe("market", market)
    states = {m.symbol: MarketState(fresh=m.fresh, reason=m.reason) for m in markets}
    result = Health(
        status="ok",
        database=_probe("database", database),
        aws=_probe("aws", aws),
        market=MarketHealth(
            ok=market_probe.ok and all(state.fresh for state in states.values()),
            latency_ms=market_probe.latency_ms,
            error=market_probe.error,
            exchange=settings.market_exchange,
            markets=states,
        ),
    )
    if not (result.database.ok and result.aws.ok and result.market.ok):
        result = result.model_copy(update={"status": "degraded"})
    return JSONResponse(result.model_dump(), status_code=200 if result.status == "ok" else 503)
