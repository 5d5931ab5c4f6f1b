"""GET /health: is the API able to reach its database and AWS?"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from functions.api.context import Context
from tekoa.aws.clients import aws_client
from tekoa.observability import logger

router = APIRouter(tags=["health"])


class DependencyHealth(BaseModel):
    ok: bool
    latency_ms: float
    error: str | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: DependencyHealth
    aws: DependencyHealth


def _probe(name: str, check: object) -> DependencyHealth:
    started = time.perf_counter()
    try:
        check()  # type: ignore[operator]
    except Exception as exc:
        logger.warning("health probe failed", extra={"dependency": name, "error_type": type(exc).__name__})
        return DependencyHealth(
            ok=False, latency_ms=(time.perf_counter() - started) * 1000, error=type(exc).__name__
        )
    return DependencyHealth(ok=True, latency_ms=round((time.perf_counter() - started) * 1000, 2))


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(context: Context) -> JSONResponse:
    """Database and AWS reachability; 503 when either is down."""

    def database() -> None:
        with context.database.connection() as conn:
            conn.execute("SELECT 1").fetchone()
            conn.rollback()

    def aws() -> None:
        sqs = aws_client("sqs", context.settings)
        sqs.get_queue_url(QueueName=context.settings.names.order_queue)

    result = Health(status="ok", database=_probe("database", database), aws=_probe("aws", aws))
    if not (result.database.ok and result.aws.ok):
        result = result.model_copy(update={"status": "degraded"})
    return JSONResponse(result.model_dump(), status_code=200 if result.status == "ok" else 503)
