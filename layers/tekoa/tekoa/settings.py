"""Process configuration: one pydantic-settings model, validated once at start.

Environment variables use the `TEKOA_` prefix; `DATABASE_URL` and `AWS_ENDPOINT_URL` keep
their conventional names. A bad value stops the process with a message naming the variable.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tekoa.names import ResourceNames

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class SettingsError(RuntimeError):
    """Configuration is invalid; the message lists every bad variable."""


class Settings(BaseSettings):
    """Every knob of a Tekoa process. Defaults are the embedded local platform's."""

    model_config = SettingsConfigDict(env_prefix="TEKOA_", extra="ignore", frozen=True)

    stage: str = Field(
        "local", pattern=r"^[a-z][a-z0-9-]{0,19}$", description="Deployment stage; prefixes resource names."
    )
    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "TEKOA_DATABASE_URL"),
        description="PostgreSQL conninfo/URL. Unset locally: the embedded server is used.",
    )
    database_secret_arn: str | None = Field(
        None, description="In AWS: Secrets Manager secret with host/port/username/password/dbname."
    )
    database_host: str | None = Field(
        None, description="Overrides the secret's host (the RDS Proxy endpoint)."
    )
    aws_endpoint_url: str | None = Field(
        None,
        validation_alias=AliasChoices("AWS_ENDPOINT_URL", "TEKOA_AWS_ENDPOINT_URL"),
        description="AWS endpoint override (the local moto server).",
    )
    aws_region: str = Field(
        "us-east-1", validation_alias=AliasChoices("TEKOA_AWS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
    )
    data_dir: Path = Field(Path(".tekoa"), description="Local state: embedded database, key files.")
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_workers: int = Field(
        0, ge=0, le=64, description="API worker processes of `tekoa up` (0: one per CPU core)."
    )
    aws_port: int = Field(4566, ge=1, le=65535, description="Port of the local AWS endpoint.")
    log_level: LogLevel = "INFO"
    db_pool_max: int = Field(10, ge=1, le=200)
    db_connect_timeout_s: int = Field(10, ge=1, le=120)

    # Charts. In AWS the bucket's name carries the account and region, so the deployment names
    # it; locally it is the stage's name from ResourceNames.
    charts_bucket: str | None = Field(None, description="Charts bucket (default: the stage's local name).")
    chart_url_ttl_s: int = Field(
        600, ge=30, le=900, description="Lifetime of a presigned chart URL (at most 15 minutes)."
    )

    # Market data. Locally the stream runs the seeded simulated exchange; name a ccxt exchange
    # id (e.g. binance) to stream real markets. Symbols are ccxt unified, comma-separated.
    market_exchange: str = Field("simulated", min_length=1, description="Exchange the market stream follows.")
    market_symbols: str = Field(
        "BTC/USDT,ETH/USDT,SOL/USDT",
        description="Markets always streamed (comma-separated), besides those running bots need.",
    )
    market_health_host: str = "127.0.0.1"
    market_health_port: int = Field(8080, ge=1, le=65535, description="Market stream's GET /health.")
    market_poll_s: float = Field(
        30.0, gt=0, le=3600, description="How often the stream re-reads the bots' markets."
    )
    market_backfill_every_s: float = Field(300.0, gt=0, le=86400, description="Scheduled gap repair period.")
    market_history_days: float = Field(
        2.0, ge=0, le=3650, description="History fetched for a market with no candles yet (every timeframe)."
    )
    market_stale_after_s: float = Field(
        30.0, gt=0, le=3600, description="Silence after which a feed is stale."
    )
    market_simulated_speed: float = Field(1.0, gt=0, description="Simulated seconds per wall second.")
    market_metrics_every_s: float | None = Field(
        None,
        gt=0,
        le=3600,
        description="Publish the candle-age metric (CloudWatch EMF on stdout) this often; unset: never.",
    )
    candle_retention_days: dict[str, int | None] = Field(
        default_factory=lambda: dict[str, int | None]({"1m": 30, "5m": 180, "15m": 365}),
        description="Days of candles kept per timeframe (JSON); a missing or null entry keeps them forever.",
    )
    # Live updates. Locally the `ws-gateway` part plays API Gateway's WebSocket API on ws_port;
    # in AWS the management endpoint is the WebSocket stage's callback URL.
    ws_host: str = "127.0.0.1"
    ws_port: int = Field(8001, ge=1, le=65535, description="Port of the local WebSocket gateway.")
    ws_management_url: str | None = Field(
        None,
        description="The @connections endpoint pushes go to (AWS: the stage's callback URL); "
        "unset: the local gateway's.",
    )
    forming_candle_every_s: float = Field(
        1.0, gt=0, le=60, description="How often the market stream pushes a market's forming candle."
    )
    # Notifications.
    telegram_api_url: str = Field(
        "https://api.telegram.org", description="Base URL of the Telegram Bot API (tests: a loopback fake)."
    )
    notify_allow_insecure_urls: bool = Field(
        False,
        description="Let webhooks use http:// and loopback or private addresses (the local platform; "
        "in AWS a webhook must be https to a public address).",
    )
    notify_timeout_s: float = Field(5.0, gt=0, le=30, description="How long one notification may take.")
    notify_retry_base_s: int = Field(
        10, ge=1, le=900, description="First retry delay of a failed notification; it doubles each time."
    )
    # Trading. Paper accounts open on first use with this balance; the paper broker charges
    # these fees and slippage; market orders need a trade at most this old.
    paper_starting_balance: Decimal = Field(
        Decimal(10_000), gt=0, le=Decimal("1e12"), description="What a new paper account is credited."
    )
    paper_quote_currency: str = Field("USDT", pattern=r"^[A-Z0-9]{1,20}$")
    evaluator_max_skips: int = Field(
        5,
        ge=1,
        le=1000,
        description="Skipped evaluations in a row (no or stale data) that put a bot in error.",
    )
    evaluator_max_feed_age_s: float = Field(
        180.0, gt=0, description="A market with no trade recorded for this long is stale: bots skip."
    )
    evaluator_fanout_threshold: int = Field(
        2000, ge=1, description="Past this many running bots a schedule tick fans out by market shard."
    )
    evaluator_shards: int = Field(8, ge=1, le=1024, description="Market shards of a fanned-out tick.")
    paper_taker_fee_pct: Decimal = Field(Decimal("0.1"), ge=0, lt=10)
    paper_maker_fee_pct: Decimal = Field(Decimal("0.1"), ge=0, lt=10)
    paper_slippage_pct: Decimal = Field(Decimal("0.05"), ge=0, lt=10)
    live_market_buffer_pct: Decimal = Field(
        Decimal(2), ge=0, lt=50, description="Extra held for live market and stop buys above the last price."
    )
    price_max_age_s: float = Field(
        30.0, gt=0, le=3600, description="A market order needs a trade at most this old (paper fills at it)."
    )
    key_provider: Literal["kms", "file"] = Field(
        "kms",
        description="Who wraps the data keys of broker secrets: AWS KMS, or (local platform) "
        "the master key file in data_dir, which survives restarts of the local AWS endpoint.",
    )

    # Authentication. The platform signs its own access tokens (HS256, key in Secrets Manager).
    jwt_issuer: str = Field("tekoa", min_length=1, description="`iss` of the platform's own tokens.")
    jwt_audience: str = Field("tekoa-api", min_length=1, description="`aud` of the platform's own tokens.")
    access_token_ttl_s: int = Field(900, ge=60, le=3600)
    refresh_token_ttl_s: int = Field(30 * 86400, ge=3600, le=90 * 86400)
    auth_jwks_url: str | None = Field(
        None, description="External issuer's JWKS (e.g. Cognito): its tokens are accepted too."
    )
    auth_issuer: str | None = Field(None, description="`iss` the external issuer's tokens must carry.")
    auth_audience: str | None = Field(None, description="`aud` the external issuer's tokens must carry.")
    # argon2id cost; tests lower it (the hashing itself is never bypassed).
    password_hash_time_cost: int = Field(3, ge=1, le=10)
    password_hash_memory_kib: int = Field(65536, ge=256, le=1048576)
    password_hash_parallelism: int = Field(4, ge=1, le=16)
    # Sign-in throttling: failures within the window, per account and per client address.
    login_failure_window_s: int = Field(900, ge=1, le=86400)
    login_max_failures_per_account: int = Field(5, ge=1, le=1000)
    login_max_failures_per_address: int = Field(20, ge=1, le=100000)
    # Sign-up throttling: accounts created per client address within the window.
    signup_window_s: int = Field(3600, ge=1, le=86400)
    signup_max_per_address: int = Field(10, ge=1, le=100000)
    token_state_cache_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="How long a process trusts what it read of an account's token generation: "
        "another process's sign-out reaches it within this time.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not (value.startswith(("postgresql://", "postgres://")) or "=" in value):
            raise ValueError("must be a postgresql:// URL or a libpq conninfo string")
        return value

    @field_validator("aws_endpoint_url", "ws_management_url")
    @classmethod
    def _endpoint_shape(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _external_issuer_complete(self) -> Settings:
        if self.auth_jwks_url and not (self.auth_issuer and self.auth_audience):
            raise ValueError("TEKOA_AUTH_JWKS_URL needs TEKOA_AUTH_ISSUER and TEKOA_AUTH_AUDIENCE")
        if self.auth_jwks_url and self.auth_issuer == self.jwt_issuer:
            raise ValueError("TEKOA_AUTH_ISSUER must differ from TEKOA_JWT_ISSUER")
        return self

    @field_validator("market_symbols")
    @classmethod
    def _symbols_shape(cls, value: str) -> str:
        symbols = [part.strip() for part in value.split(",") if part.strip()]
        bad = [symbol for symbol in symbols if symbol.count("/") != 1]
        if bad:
            raise ValueError(f"symbols must be ccxt unified like BTC/USDT, got {bad}")
        return ",".join(symbols)

    @field_validator("candle_retention_days")
    @classmethod
    def _retention_shape(cls, value: dict[str, int | None]) -> dict[str, int | None]:
        known = {"1m", "5m", "15m", "1h", "4h", "1d"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown timeframes {unknown}; use {sorted(known)}")
        if any(days is not None and days < 1 for days in value.values()):
            raise ValueError("retention must be at least 1 day (or null: forever)")
        return value

    @property
    def api_worker_count(self) -> int:
        """`api_workers`, or the number of CPU cores this process may use."""
        if self.api_workers:
            return self.api_workers
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, cores or 1)

    @property
    def websocket_management_url(self) -> str:
        """Where pushes go: `ws_management_url`, else the local gateway."""
        return self.ws_management_url or f"http://{self.ws_host}:{self.ws_port}"

    @property
    def market_symbol_list(self) -> tuple[str, ...]:
        """`market_symbols` as a tuple."""
        return tuple(part for part in self.market_symbols.split(",") if part)

    @property
    def names(self) -> ResourceNames:
        """Names of this stage's AWS resources."""
        return ResourceNames(self.stage)

    @property
    def charts_bucket_name(self) -> str:
        """The bucket chart images live in."""
        return self.charts_bucket or self.names.charts_bucket


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise SettingsError with a readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            variable = where if where.isupper() else f"TEKOA_{where.upper()}"
            # Connection strings carry passwords: never echo them back.
            shown = "" if "URL" in variable or "SECRET" in variable else f" (got {error.get('input')!r})"
            problems.append(f"  {variable}: {error['msg']}{shown}")
        raise SettingsError("Invalid configuration:\n" + "\n".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, validated once (at cold start for a Lambda)."""
    return load_settings()
