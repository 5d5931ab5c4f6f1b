"""The FastAPI application factory, shared by the Lambda handler and the local runtime."""

from __future__ import annotations

from fastapi import FastAPI

from functions.api.deps import AppContext
from functions.api.errors import install_error_handlers
from functions.api.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from functions.api.routes import (
    accounts,
    activity,
    api_tokens,
    auth,
    bots,
    credentials,
    health,
    market,
    orders,
    positions,
    strategies,
    trades,
)
from tekoa.db.connection import Database
from tekoa.settings import Settings

MAX_BODY_BYTES = 256 * 1024


def create_app(settings: Settings, database: Database) -> FastAPI:
    """Build the API wired to `database` and the AWS endpoint named in `settings`."""
    app = FastAPI(
        title="Tekoa API",
        version="1.0.0",
        description="Multi-user trading-bot platform: accounts, strategies, bots, market data.",
    )
    app.state.context = AppContext(settings=settings, database=database)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(api_tokens.router)
    app.include_router(strategies.router)
    app.include_router(bots.router)
    app.include_router(credentials.router)
    app.include_router(activity.router)
    app.include_router(market.router)
    app.include_router(accounts.router)
    app.include_router(orders.router)
    app.include_router(positions.router)
    app.include_router(trades.router)
    return app
