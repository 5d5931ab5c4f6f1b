"""The FastAPI application factory, shared by the Lambda handler and the local API workers."""

from __future__ import annotations

from fastapi import FastAPI

from functions.api.context import ApiContext
from functions.api.docs import install_docs
from functions.api.errors import install_error_handlers
from functions.api.middleware import (
    BodySizeLimitMiddleware,
    RequestIdMiddleware,
    StorableParametersMiddleware,
)
from functions.api.routes import (
    accounts,
    activity,
    api_tokens,
    auth,
    bot_trading,
    bots,
    charts,
    credentials,
    health,
    market,
    notifications,
    orders,
    positions,
    risk,
    strategies,
    trades,
)

MAX_BODY_BYTES = 256 * 1024


def create_app(context: ApiContext) -> FastAPI:
    """Build the API on `context` (built once per process by the entry point)."""
    app = FastAPI(
        title="Tekoa API",
        version="1.0.0",
        description="Multi-user trading-bot platform: accounts, strategies, bots, market data, charts.",
        docs_url=None,
        redoc_url=None,
        # One schema per model (no `-Input`/`-Output` pairs under one title): client
        # generators such as openapi-python-client need unique model names.
        separate_input_output_schemas=False,
    )
    app.state.context = context
    install_docs(app)
    install_error_handlers(app)
    app.add_middleware(StorableParametersMiddleware)
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
    app.include_router(charts.router)
    app.include_router(accounts.router)
    app.include_router(orders.router)
    app.include_router(positions.router)
    app.include_router(trades.router)
    app.include_router(bot_trading.router)
    app.include_router(risk.router)
    app.include_router(notifications.router)
    return app
