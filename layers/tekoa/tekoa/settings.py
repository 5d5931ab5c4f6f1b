"""Process configuration: one pydantic-settings model, validated once at start.

Environment variables use the `TEKOA_` prefix; `DATABASE_URL` and `AWS_ENDPOINT_URL` keep
their conventional names. A bad value stops the process with a message naming the variable.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
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
    aws_port: int = Field(4566, ge=1, le=65535, description="Port of the local AWS endpoint.")
    log_level: LogLevel = "INFO"
    db_pool_max: int = Field(10, ge=1, le=200)
    db_connect_timeout_s: int = Field(10, ge=1, le=120)

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

    @field_validator("aws_endpoint_url")
    @classmethod
    def _endpoint_shape(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def names(self) -> ResourceNames:
        """Names of this stage's AWS resources."""
        return ResourceNames(self.stage)


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
