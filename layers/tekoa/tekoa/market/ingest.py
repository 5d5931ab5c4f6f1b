"""Candle ingestion for the ingest Lambda: on-demand history backfills and the scheduled repair.

Two event shapes reach `functions/ingest/handler.py`:

* on demand, `{"exchange", "symbol", "timeframe", "start", "end"}` (ms; `end` defaults to
  now): the holes of that range are filled from the exchange's REST history;
* the EventBridge schedule (`"source": "aws.events", "detail-type": "Scheduled Event"`): every
  market the platform follows (`market_freshness`) or a running bot needs is repaired up to
  now, every timeframe (`tekoa.market.backfill.repair_series`).

Both are idempotent and resumable: candles are merged by key, the coverage watermark moves
with each committed page, and a run that stops at its deadline leaves the rest to the next.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tekoa.db import candles as candle_store
from tekoa.db.connection import Database, service_transaction
from tekoa.domain.exchanges import SIMULATED_EXCHANGE, ExchangeId
from tekoa.domain.symbols import SYMBOL_PATTERN
from tekoa.domain.timeframes import ALL_TIMEFRAMES, Timeframe
from tekoa.market.backfill import DEFAULT_PAGE_LIMIT, HistorySource, backfill_range, repair_series
from tekoa.observability import logger

DAY_MS = 86_400_000
MAX_RANGE_CANDLES = 1_000_000
"""An on-demand request may ask for at most this many candles (about 2 years of 1m)."""


class BackfillRequest(BaseModel):
    """Fill one series' history for `[start, end)` (UTC ms)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["backfill"] = "backfill"
    exchange: ExchangeId
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    timeframe: Timeframe
    start: int = Field(ge=0, description="UTC ms, inclusive.")
    end: int | None = Field(None, ge=0, description="UTC ms, exclusive; default now.")

    @model_validator(mode="after")
    def _range(self) -> BackfillRequest:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        span_end = self.end if self.end is not None else self.start + MAX_RANGE_CANDLES * self.timeframe.ms
        if (span_end - self.start) // self.timeframe.ms > MAX_RANGE_CANDLES:
            raise ValueError(f"at most {MAX_RANGE_CANDLES} candles per request: split the range")
        return self


class ScheduledRepair(BaseModel):
    """The EventBridge schedule's tick (fields as EventBridge sends them)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    kind: Literal["scheduled"] = "scheduled"
    source: Literal["aws.events"]
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    time: str | None = None


def parse_event(event: dict[str, Any]) -> BackfillRequest | ScheduledRepair:
    """The event as a model; raises pydantic.ValidationError with every problem when malformed."""
    if event.get("source") == "aws.events":
        return ScheduledRepair.model_validate(event)
    return BackfillRequest.model_validate(event)


@dataclass(slots=True)
class IngestResult:
    """What one invocation did (returned by the handler, logged)."""

    markets: int = 0
    series: int = 0
    missing: int = 0
    written: int = 0
    failed: list[str] = field(default_factory=list)
    stopped_early: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "markets": self.markets,
            "series": self.series,
            "missing": self.missing,
            "written": self.written,
            "failed": self.failed,
            "stopped_early": self.stopped_early,
        }


SourceFactory = Callable[[str, Sequence[str]], HistorySource]
"""(exchange, symbols) → a history source; the caller closes it if it has `close()`."""


def default_source(exchange: str, symbols: Sequence[str]) -> HistorySource:
    """The simulated exchange or a ccxt REST client (no socket is opened for history)."""
    if exchange == SIMULATED_EXCHANGE:
        from tekoa.market.simulated import SimulatedExchange

        return SimulatedExchange(symbols)
    from tekoa.market.ccxt.source import CcxtSource

    return CcxtSource(exchange)


def followed_markets(database: Database) -> list[tuple[str, str]]:
    """Markets with stored data or a stream, plus those running bots need (if bots exist yet)."""
    with database.connection() as conn, service_transaction(conn):
        markets = [(m.exchange, m.symbol) for m in candle_store.list_freshness(conn)]
    try:
        with database.connection() as conn, service_transaction(conn):
            markets += candle_store.markets_with_running_bots(conn)
    except psycopg.errors.UndefinedTable:
        logger.info("no bots table yet: repairing followed markets only")
    return sorted(set(markets))


async def _close(source: HistorySource) -> None:
    close: Callable[[], Awaitable[None]] | None = getattr(source, "close", None)
    if close is not None:
        await close()


async def run_backfill(
    request: BackfillRequest,
    database: Database,
    *,
    source_factory: SourceFactory = default_source,
    now_ms: int | None = None,
    page_limit: int = DEFAULT_PAGE_LIMIT,
) -> IngestResult:
    """Fill the holes of one series over the requested range."""
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    source = source_factory(request.exchange, [request.symbol])
    try:
        repair = await backfill_range(
            source,
            database,
            request.symbol,
            request.timeframe,
            request.start,
            request.end if request.end is not None else now,
            now_ms=now,
            page_limit=page_limit,
        )
    finally:
        await _close(source)
    result = IngestResult(markets=1, series=1, missing=repair.missing_before, written=repair.written)
    logger.info(
        "backfill done", extra={"exchange": request.exchange, "symbol": request.symbol, **result.as_dict()}
    )
    return result


async def run_scheduled_repair(
    database: Database,
    *,
    source_factory: SourceFactory = default_source,
    now_ms: int | None = None,
    history_days: float = 2.0,
    timeframes: Sequence[Timeframe] = ALL_TIMEFRAMES,
    deadline: Callable[[], bool] | None = None,
    page_limit: int = DEFAULT_PAGE_LIMIT,
) -> IngestResult:
    """Repair every followed market up to now; stop cleanly when `deadline()` says so."""
    now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
    markets = followed_markets(database)
    by_exchange: dict[str, list[str]] = {}
    for exchange, symbol in markets:
        by_exchange.setdefault(exchange, []).append(symbol)
    result = IngestResult(markets=len(markets))
    for exchange, symbols in by_exchange.items():
        source = source_factory(exchange, symbols)
        try:
            for symbol in symbols:
                for timeframe in timeframes:
                    if deadline is not None and deadline():
                        result.stopped_early = True
                        return result
                    try:
                        repair = await repair_series(
                            source,
                            database,
                            symbol,
                            timeframe,
                            now_ms=now,
                            history_start_ms=now - int(history_days * DAY_MS),
                            page_limit=page_limit,
                        )
                    except Exception:
                        logger.exception(
                            "repair failed",
                            extra={"exchange": exchange, "symbol": symbol, "timeframe": timeframe.value},
                        )
                        result.failed.append(f"{exchange}:{symbol}:{timeframe.value}")
                        continue
                    result.series += 1
                    result.missing += repair.missing_before
                    result.written += repair.written
        finally:
            await _close(source)
    logger.info("scheduled repair done", extra=result.as_dict())
    return result
