"""Strategies: create, change (each change a new version), enable/disable, delete.

Every function runs one tenant transaction as the caller, so another user's strategy is
simply not found, and a change is committed whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tekoa.db import bots as bot_rows
from tekoa.db import strategies as rows
from tekoa.db.connection import BeforeCommit, Database, tenant_transaction
from tekoa.domain.bots import BotStatus
from tekoa.domain.resources import ResourceInUse, Strategy, StrategyNotFound, StrategyVersion
from tekoa.domain.text import Description, Name, storable_json
from tekoa.errors import TekoaError
from tekoa.strategies.models import StrategyDefinition, ensure_tradable_on, strategy_timeframe

VersionCheck = Callable[[int], None]
"""Called with the stored version before a change; raises to refuse it (412/428)."""


def _definition_storable(value: StrategyDefinition | None) -> StrategyDefinition | None:
    if value is not None:
        storable_json(value.model_dump(mode="json"))
    return value


class StrategyCreate(BaseModel):
    """A new strategy."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="Unique among your strategies (case-insensitive).")
    description: Description = ""
    definition: StrategyDefinition
    enabled: bool = Field(True, description="Bots can start only with an enabled strategy.")

    _definition = field_validator("definition")(_definition_storable)


class StrategyUpdate(BaseModel):
    """Fields to change; omitted fields keep their value. Send `version` or If-Match."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Description | None = None
    definition: StrategyDefinition | None = None
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="The version you are changing.")

    _definition = field_validator("definition")(_definition_storable)


def _stored(definition: StrategyDefinition) -> tuple[dict[str, Any], str | None]:
    return definition.model_dump(mode="json"), getattr(definition, "bot_type", None)


def create_strategy(
    database: Database,
    user_id: UUID,
    request: StrategyCreate,
    *,
    before_commit: BeforeCommit[Strategy] | None = None,
) -> Strategy:
    """Store a new strategy at version 1 (and record version 1 in its history)."""
    definition, bot_type = _stored(request.definition)
    with database.connection() as conn, tenant_transaction(conn, user_id):
        strategy = rows.insert_strategy(
            conn,
            user_id,
            name=request.name,
            description=request.description,
            definition=definition,
            bot_type=bot_type,
            enabled=request.enabled,
        )
        rows.insert_strategy_version(conn, user_id, strategy)
        if before_commit is not None:
            before_commit(conn, strategy)
    return strategy


def list_strategies(
    database: Database,
    user_id: UUID,
    *,
    enabled: bool | None = None,
    kind: str | None = None,
    after: tuple[datetime, UUID] | None = None,
    limit: int,
) -> list[Strategy]:
    """The caller's strategies, newest first."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        return rows.list_strategies(conn, user_id, enabled=enabled, kind=kind, after=after, limit=limit)


def get_strategy(database: Database, user_id: UUID, strategy_id: UUID) -> Strategy:
    """One of the caller's strategies; StrategyNotFound otherwise."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        strategy = rows.get_strategy(conn, user_id, strategy_id)
    if strategy is None:
        raise StrategyNotFound()
    return strategy


def update_strategy(
    database: Database, user_id: UUID, strategy_id: UUID, changes: StrategyUpdate, check_version: VersionCheck
) -> Strategy:
    """Apply `changes` as a new version, after `check_version` accepted the stored version.

    A new definition must still suit every bot that uses the strategy (same timeframe, a
    market it can trade); otherwise ResourceInUse (409) names the first bot that would break.
    """
    with database.connection() as conn, tenant_transaction(conn, user_id):
        current = rows.get_strategy(conn, user_id, strategy_id, for_update=True)
        if current is None:
            raise StrategyNotFound()
        check_version(current.version)
        definition = changes.definition if changes.definition is not None else current.definition
        if changes.definition is not None:
            _ensure_bots_still_fit(conn, user_id, strategy_id, definition)
        stored, bot_type = _stored(definition)
        updated = rows.update_strategy(
            conn,
            user_id,
            strategy_id,
            name=changes.name if changes.name is not None else current.name,
            description=changes.description if changes.description is not None else current.description,
            definition=stored,
            bot_type=bot_type,
            enabled=current.enabled,
        )
        rows.insert_strategy_version(conn, user_id, updated)
    return updated


def set_strategy_enabled(database: Database, user_id: UUID, strategy_id: UUID, *, enabled: bool) -> Strategy:
    """Enable or disable a strategy (a new version); repeating the current state changes nothing.

    Disabling is refused (409) while a running bot uses the strategy: stop the bot first.
    """
    with database.connection() as conn, tenant_transaction(conn, user_id):
        current = rows.get_strategy(conn, user_id, strategy_id, for_update=True)
        if current is None:
            raise StrategyNotFound()
        if current.enabled == enabled:
            return current
        if not enabled:
            running = [
                bot
                for bot in bot_rows.bots_using_strategy(conn, user_id, strategy_id)
                if bot.status is BotStatus.RUNNING
            ]
            if running:
                raise ResourceInUse(
                    f"running bot {running[0].name!r} uses this strategy; stop it before disabling"
                )
        stored, bot_type = _stored(current.definition)
        updated = rows.update_strategy(
            conn,
            user_id,
            strategy_id,
            name=current.name,
            description=current.description,
            definition=stored,
            bot_type=bot_type,
            enabled=enabled,
        )
        rows.insert_strategy_version(conn, user_id, updated)
    return updated


def delete_strategy(database: Database, user_id: UUID, strategy_id: UUID) -> None:
    """Delete a strategy and its history; 409 while any bot uses it (running or not)."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        current = rows.get_strategy(conn, user_id, strategy_id, for_update=True)
        if current is None:
            raise StrategyNotFound()
        users = bot_rows.bots_using_strategy(conn, user_id, strategy_id)
        if users:
            running = [bot for bot in users if bot.status is BotStatus.RUNNING]
            first = (running or users)[0]
            raise ResourceInUse(
                f"{first.status} bot {first.name!r} uses this strategy; "
                "delete the bots that use it (stop running ones first)"
            )
        rows.delete_strategy(conn, user_id, strategy_id)


def list_strategy_versions(
    database: Database, user_id: UUID, strategy_id: UUID, *, before_version: int | None, limit: int
) -> list[StrategyVersion]:
    """A strategy's versions, newest first; StrategyNotFound when it is not the caller's."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        if rows.get_strategy(conn, user_id, strategy_id) is None:
            raise StrategyNotFound()
        return rows.list_strategy_versions(
            conn, user_id, strategy_id, before_version=before_version, limit=limit
        )


def _ensure_bots_still_fit(
    conn: Any, user_id: UUID, strategy_id: UUID, definition: StrategyDefinition
) -> None:
    timeframe = strategy_timeframe(definition)
    for bot in bot_rows.bots_using_strategy(conn, user_id, strategy_id):
        if bot.timeframe is not timeframe:
            raise ResourceInUse(
                f"bot {bot.name!r} runs this strategy on {bot.timeframe}; the new definition uses "
                f"{timeframe}. Change the bot's timeframe or use a new strategy",
                field="definition",
            )
        try:
            ensure_tradable_on(definition, bot.symbol)
        except TekoaError as exc:
            raise ResourceInUse(f"bot {bot.name!r}: {exc.message}", field="definition") from None
