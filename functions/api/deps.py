"""FastAPI dependencies: what the app was wired with at construction (no globals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from tekoa.db.connection import Database
from tekoa.settings import Settings


@dataclass(frozen=True, slots=True)
class AppContext:
    """The adapters a running API uses; built once per process by the entry point."""

    settings: Settings
    database: Database


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


def request_id(request: Request) -> str | None:
    value: Any = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None
