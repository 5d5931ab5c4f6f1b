"""Strategies and their version history. Every query names its owner; RLS backs it up."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg.types.string import TextLoader
from pydantic import TypeAdapter

from tekoa.domain.resources import NameTaken, Strategy, StrategyNotFound, StrategyVersion
from tekoa.strategies.models import StrategyDefinition

_COLUMNS = sql.SQL(
    "id, name, description, definition, kind, bot_type, enabled, version, created_at, updated_at"
)

_DEFINITION = TypeAdapter(StrategyDefinition)
_PARSED_MAX = 10_000
_parsed: dict[tuple[UUID, int], StrategyDefinition] = {}


def _definition(strategy_id: UUID, version: int, stored: str) -> StrategyDefinition:
    """The stored definition (JSON text) of one version of a strategy, parsed.

    Parsing runs every rule of the strategy language (a grid computes its levels) and costs
    far more than reading the row; a version's definition never changes, so each one is parsed
    once per process. The rows were read under the caller's tenancy: the cache only spares the
    parsing of what they already hold.
    """
    key = (strategy_id, version)
    definition = _parsed.get(key)
    if definition is None:
        definition = _DEFINITION.validate_json(stored)
        if len(_parsed) >= _PARSED_MAX:
            _parsed.clear()  # bounded memory; a cold cache only costs parsing
        _parsed[key] = definition
    return definition


def _rows(conn: psycopg.Connection[Any]) -> psycopg.Cursor[dict[str, Any]]:
    """A cursor whose rows are dicts and whose jsonb stays JSON text: `_definition` parses it
    only when it is not cached."""
    cursor = conn.cursor(row_factory=dict_row)
    cursor.adapters.register_loader("jsonb", TextLoader)
    return cursor


def _strategy(row: dict[str, Any]) -> Strategy:
    return Strategy.model_validate(
        {**row, "definition": _definition(row["id"], row["version"], row["definition"])}
    )


def _strategy_version(row: dict[str, Any]) -> StrategyVersion:
    definition = _definition(row["strategy_id"], row["version"], row["definition"])
    return StrategyVersion.model_validate({**row, "definition": definition})


def insert_strategy(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    name: str,
    description: str,
    definition: dict[str, Any],
    bot_type: str | None,
    enabled: bool,
) -> Strategy:
    """Store a new strategy at version 1; NameTaken if the owner already uses the name."""
    try:
        with conn.transaction(), _rows(conn) as cur:
            cur.execute(
                sql.SQL(
                    "INSERT INTO strategies (user_id, name, description, definition, kind, bot_type,"
                    " enabled) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {}"
                ).format(_COLUMNS),
                (user_id, name, description, Jsonb(definition), definition["kind"], bot_type, enabled),
            )
            row = cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise NameTaken("strategy", name) from None
    assert row is not None
    return _strategy(row)


def get_strategy(
    conn: psycopg.Connection[Any], user_id: UUID, strategy_id: UUID, *, for_update: bool = False
) -> Strategy | None:
    """The owner's strategy, locked for the transaction when `for_update`."""
    lock = " FOR UPDATE" if for_update else ""
    with _rows(conn) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM strategies WHERE user_id = %s AND id = %s{}").format(
                _COLUMNS, sql.SQL(lock)
            ),
            (user_id, strategy_id),
        )
        row = cur.fetchone()
    return None if row is None else _strategy(row)


def list_strategies(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    *,
    enabled: bool | None,
    kind: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Strategy]:
    """The owner's strategies, newest first, starting after the (created_at, id) cursor."""
    after_time, after_id = after if after is not None else (None, None)
    with _rows(conn) as cur:
        cur.execute(
            sql.SQL(
                "SELECT {} FROM strategies WHERE user_id = %(user_id)s"
                " AND (%(enabled)s::boolean IS NULL OR enabled = %(enabled)s)"
                " AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
                " AND (%(after_time)s::timestamptz IS NULL"
                " OR (created_at, id) < (%(after_time)s, %(after_id)s))"
                " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
            ).format(_COLUMNS),
            {
                "user_id": user_id,
                "enabled": enabled,
                "kind": kind,
                "after_time": after_time,
                "after_id": after_id,
                "limit": limit,
            },
        )
        return [_strategy(row) for row in cur.fetchall()]


def update_strategy(
    conn: psycopg.Connection[Any],
    user_id: UUID,
    strategy_id: UUID,
    *,
    name: str,
    description: str,
    definition: dict[str, Any],
    bot_type: str | None,
    enabled: bool,
) -> Strategy:
    """Replace a strategy's fields and bump its version; NameTaken on a duplicate name."""
    try:
        with conn.transaction(), _rows(conn) as cur:
            cur.execute(
                sql.SQL(
                    "UPDATE strategies SET name = %s, description = %s, definition = %s, kind = %s,"
                    " bot_type = %s, enabled = %s, version = version + 1, updated_at = now() WHERE"
                    " user_id = %s AND id = %s RETURNING {}"
                ).format(_COLUMNS),
                (
                    name,
                    description,
                    Jsonb(definition),
                    definition["kind"],
                    bot_type,
                    enabled,
                    user_id,
                    strategy_id,
                ),
            )
            row = cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise NameTaken("strategy", name) from None
    if row is None:
        raise StrategyNotFound()
    return _strategy(row)


def delete_strategy(conn: psycopg.Connection[Any], user_id: UUID, strategy_id: UUID) -> bool:
    """Delete a strategy and its history; False when the owner has no such strategy."""
    cur = conn.execute("DELETE FROM strategies WHERE user_id = %s AND id = %s", (user_id, strategy_id))
    return cur.rowcount == 1


def insert_strategy_version(conn: psycopg.Connection[Any], user_id: UUID, strategy: Strategy) -> None:
    """Append the strategy's current state to its history."""
    conn.execute(
        "INSERT INTO strategy_versions"
        " (strategy_id, user_id, version, name, description, definition, enabled)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            strategy.id,
            user_id,
            strategy.version,
            strategy.name,
            strategy.description,
            Jsonb(strategy.definition.model_dump(mode="json")),
            strategy.enabled,
        ),
    )


def list_strategy_versions(
    conn: psycopg.Connection[Any], user_id: UUID, strategy_id: UUID, *, before_version: int | None, limit: int
) -> list[StrategyVersion]:
    """A strategy's versions, newest first, below `before_version` when given."""
    with _rows(conn) as cur:
        cur.execute(
            "SELECT strategy_id, version, name, description, definition, enabled, created_at"
            " FROM strategy_versions WHERE user_id = %s AND strategy_id = %s AND version < %s"
            " ORDER BY version DESC LIMIT %s",
            (user_id, strategy_id, before_version if before_version is not None else 2**31 - 1, limit),
        )
        return [_strategy_version(row) for row in cur.fetchall()]
