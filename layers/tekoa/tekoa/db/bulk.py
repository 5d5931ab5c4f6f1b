"""Multi-row writes from one JSON parameter (`jsonb_to_recordset`).

The statement text depends only on the table and its columns, never on how many rows are
written, so psycopg parses it once; the rows travel as one JSON document, serialised by the
standard library's C encoder. (A VALUES list with a placeholder per value made a statement
text psycopg had to parse on every call, and arrays per column are adapted value by value in
Python: either cost more than the write.) Decimals and ids travel as strings and the server
reads them with their types' own input functions, so nothing is rounded on the way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

Column = tuple[str, str]
"""(name, PostgreSQL type)."""


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Jsonb):
        return value.obj
    raise TypeError(f"cannot write {type(value).__name__} in bulk")


def document(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> str:
    names = [name for name, _ in columns]
    return json.dumps(
        [dict(zip(names, row, strict=True)) for row in rows], default=_encode, separators=(",", ":")
    )


def recordset(columns: Sequence[Column]) -> str:
    return (
        "jsonb_to_recordset(%s::jsonb) AS v (" + ", ".join(f"{name} {kind}" for name, kind in columns) + ")"
    )


def insert_rows(
    conn: psycopg.Connection[Any], table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT `rows` (values in `columns` order) in one statement, returning nothing."""
    if not rows:
        return
    names = ", ".join(name for name, _ in columns)
    conn.execute(
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {recordset(columns)}",  # noqa: S608 -- fixed identifiers
        (document(columns, rows),),
    )


def update_rows(
    conn: psycopg.Connection[Any],
    table: str,
    keys: Sequence[Column],
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
) -> None:
    """UPDATE the rows matching `keys` (values: keys then columns) in one statement."""
    if not rows:
        return
    every = [*keys, *columns]
    assignments = ", ".join(f"{name} = v.{name}" for name, _ in columns)
    match = " AND ".join(f"t.{name} = v.{name}" for name, _ in keys)
    conn.execute(
        f"UPDATE {table} AS t SET {assignments} FROM {recordset(every)} WHERE {match}",  # noqa: S608
        (document(every, rows),),
    )
