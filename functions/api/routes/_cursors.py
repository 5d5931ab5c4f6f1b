"""Cursor payloads shared by the trading resources' list endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from functions.api.conventions import PageRequest, invalid_cursor


class _Positioned(Protocol):
    @property
    def id(self) -> UUID: ...

    @property
    def created_at(self) -> datetime: ...


def after_created(page: PageRequest) -> tuple[datetime, UUID] | None:
    """The (created_at, id) a newest-first page continues after; 422 for a foreign cursor."""
    position = page.after("created_at", "id")
    if position is None:
        return None
    try:
        return datetime.fromisoformat(position[0]), UUID(position[1])
    except (TypeError, ValueError) as exc:
        raise invalid_cursor() from exc


def created_position(record: _Positioned) -> dict[str, Any]:
    """The cursor payload of a record in a (created_at, id) ordered list."""
    return {"created_at": record.created_at.isoformat(), "id": str(record.id)}


def before_number(page: PageRequest, key: str) -> int | None:
    """The integer key (id, version) a descending page continues below."""
    position = page.after(key)
    if position is None:
        return None
    value = position[0]
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_cursor()
    return value
