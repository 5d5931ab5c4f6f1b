"""How the market-stream service behaves, and how process settings map onto it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tekoa.domain.timeframes import ALL_TIMEFRAMES, Timeframe
from tekoa.market.backfill import DEFAULT_PAGE_LIMIT

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """How the service behaves; `config_from_settings` maps the process settings onto it."""

    default_symbols: tuple[str, ...]
    timeframes: tuple[Timeframe, ...] = ALL_TIMEFRAMES
    follow_bots: bool = True
    tick_s: float = 1.0
    poll_s: float = 30.0
    backfill_every_s: float = 300.0
    history_days: float = 2.0
    stale_after_s: float = 30.0
    grace_ms: int = 2_000
    page_limit: int = DEFAULT_PAGE_LIMIT
    retention_days: Mapping[str, int | None] = field(default_factory=dict)
    retention_every_s: float = 3_600.0
    health_host: str = "127.0.0.1"
    health_port: int | None = 8080
    """None: no health server; 0: any free port (see `MarketStreamService.health_url`)."""
    stop_budget_s: float = 25.0
    retry_after_s: float = 5.0
    metrics_every_s: float | None = None
    """None: publish no metrics (locally, in tests); in AWS every minute."""


def config_from_settings(settings: Any, **overrides: Any) -> StreamConfig:
    """The service's configuration from `tekoa.settings.Settings`."""
    values: dict[str, Any] = {
        "default_symbols": settings.market_symbol_list,
        "poll_s": settings.market_poll_s,
        "backfill_every_s": settings.market_backfill_every_s,
        "history_days": settings.market_history_days,
        "stale_after_s": settings.market_stale_after_s,
        "retention_days": dict(settings.candle_retention_days),
        "health_host": settings.market_health_host,
        "health_port": settings.market_health_port,
        "metrics_every_s": settings.market_metrics_every_s,
    }
    values.update(overrides)
    return StreamConfig(**values)
