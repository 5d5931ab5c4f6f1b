"""Cursor pagination of every list endpoint: keyset order, opaque cursors (`functions.api.cursors`).

    @router.get("/v1/things", response_model=Page[ThingOut])
    def list_things(principal: CurrentUser, page: PageParams, context: Context) -> Page[ThingOut]:
        rows = service.list(..., limit=page.limit + 1, after=after_created(page))  # ONE extra row
        return Page.build(rows, page, created_position)

`limit` is 1..200 (default 50). `page.after(*keys)` gives the cursor's values (None on the
first page; 422 if the cursor lacks a key); parse typed values back inside a `try` that raises
`invalid_cursor()`, as `after_created` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, Protocol, Self, TypeVar
from uuid import UUID

from fastapi import Depends, Query
from pydantic import BaseModel, Field

from functions.api.context import Context
from functions.api.cursors import CursorSigner, invalid_cursor

T = TypeVar("T")

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class PageRequest:
    """A validated `limit`, the decoded `cursor` payload (None on the first page), and the
    signer that makes the next cursor."""

    limit: int
    cursor: dict[str, Any] | None
    signer: CursorSigner

    def after(self, *keys: str) -> tuple[Any, ...] | None:
        """The cursor's values for `keys`, in order; None on the first page; 422 if any is missing."""
        if self.cursor is None:
            return None
        if any(key not in self.cursor for key in keys):
            raise invalid_cursor()
        return tuple(self.cursor[key] for key in keys)


class Page(BaseModel, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next (null: last page)."""

    items: list[T]
    next_cursor: str | None = Field(None, description="Opaque; absent on the last page.")

    @classmethod
    def build(cls, rows: Sequence[T], page: PageRequest, position: Callable[[T], dict[str, Any]]) -> Self:
        """A page from up to `page.limit + 1` rows: the extra row only tells that more exist."""
        items = list(rows[: page.limit])
        more = len(rows) > page.limit and bool(items)
        return cls(items=items, next_cursor=page.signer.encode(position(items[-1])) if more else None)


async def page_params(
    context: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")] = DEFAULT_PAGE_SIZE,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=2048, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageRequest:
    """Query parameters `limit` and `cursor` of every list endpoint."""
    signer = context.cursors
    return PageRequest(
        limit=limit, cursor=signer.decode(cursor) if cursor is not None else None, signer=signer
    )


PageParams = Annotated[PageRequest, Depends(page_params)]


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
