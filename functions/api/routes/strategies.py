"""/v1/strategies: named, versioned strategy definitions (built-in bot types or rule sets).

Every change bumps `version` and is kept in the strategy's history (`GET .../versions`).
Updates need `If-Match: "<version>"` (the ETag) or `version` in the body.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from functions.api.context import Context
from functions.api.errors import error_responses
from functions.api.idempotency import Created, IdempotencyKey, idempotent
from functions.api.pagination import Page, PageParams, after_created, before_number, created_position
from functions.api.security import CurrentUser, TradingUser
from functions.api.versioning import IfMatch, check_version, etag
from tekoa.domain.resources import Strategy, StrategyVersion
from tekoa.services import strategies as service
from tekoa.services.strategies import StrategyCreate, StrategyUpdate

router = APIRouter(prefix="/v1/strategies", tags=["strategies"])


@router.post("", status_code=201, response_model=Strategy, responses=error_responses(401, 403, 409, 422))
def create_strategy(
    body: StrategyCreate,
    request: Request,
    principal: TradingUser,
    context: Context,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Create a strategy (version 1). Honours `Idempotency-Key`."""
    return idempotent(
        context,
        principal,
        idempotency_key,
        request,
        body,
        create=lambda before_commit: service.create_strategy(
            context.database, principal.user_id, body, before_commit=before_commit
        ),
        respond=lambda strategy: Created(
            201, strategy, {"ETag": etag(strategy.version), "Location": f"/v1/strategies/{strategy.id}"}
        ),
    )


@router.get("", response_model=Page[Strategy], responses=error_responses(401, 422))
async def list_strategies(
    principal: CurrentUser,
    page: PageParams,
    context: Context,
    enabled: bool | None = Query(None, description="Only enabled (true) or disabled (false) strategies."),
    kind: Literal["builtin", "rules"] | None = Query(None, description="Only this kind of definition."),
) -> Page[Strategy]:
    """Your strategies, newest first."""
    # Async, with the database work in one worker thread: a synchronous route would take a
    # second thread hop, as FastAPI validates a synchronous route's answer in the threadpool.
    rows = await run_in_threadpool(
        service.list_strategies,
        context.database,
        principal.user_id,
        enabled=enabled,
        kind=kind,
        after=after_created(page),
        limit=page.limit + 1,
    )
    return Page[Strategy].build(rows, page, created_position)


@router.get("/{strategy_id}", response_model=Strategy, responses=error_responses(401, 404, 422))
def get_strategy(strategy_id: UUID, principal: CurrentUser, context: Context, response: Response) -> Strategy:
    """One strategy; the `ETag` header is its version, for `If-Match` on updates."""
    strategy = service.get_strategy(context.database, principal.user_id, strategy_id)
    response.headers["ETag"] = etag(strategy.version)
    return strategy


@router.patch(
    "/{strategy_id}",
    response_model=Strategy,
    responses=error_responses(401, 403, 404, 409, 412, 422, 428),
)
def update_strategy(
    strategy_id: UUID,
    body: StrategyUpdate,
    principal: TradingUser,
    context: Context,
    response: Response,
    if_match: IfMatch = None,
) -> Strategy:
    """Change name, description or definition: a new version. Needs If-Match or `version`."""
    strategy = service.update_strategy(
        context.database,
        principal.user_id,
        strategy_id,
        body,
        lambda current: check_version(if_match, body.version, current),
    )
    response.headers["ETag"] = etag(strategy.version)
    return strategy


@router.delete(
    "/{strategy_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 403, 404, 409, 422),
)
def delete_strategy(strategy_id: UUID, principal: TradingUser, context: Context) -> Response:
    """Delete a strategy and its history; 409 while bots use it."""
    service.delete_strategy(context.database, principal.user_id, strategy_id)
    return Response(status_code=204)


@router.post("/{strategy_id}/enable", response_model=Strategy, responses=error_responses(401, 403, 404, 422))
def enable_strategy(
    strategy_id: UUID, principal: TradingUser, context: Context, response: Response
) -> Strategy:
    """Allow bots to start with this strategy."""
    strategy = service.set_strategy_enabled(context.database, principal.user_id, strategy_id, enabled=True)
    response.headers["ETag"] = etag(strategy.version)
    return strategy


@router.post(
    "/{strategy_id}/disable", response_model=Strategy, responses=error_responses(401, 403, 404, 409, 422)
)
def disable_strategy(
    strategy_id: UUID, principal: TradingUser, context: Context, response: Response
) -> Strategy:
    """Stop bots from starting with this strategy; 409 while a running bot uses it."""
    strategy = service.set_strategy_enabled(context.database, principal.user_id, strategy_id, enabled=False)
    response.headers["ETag"] = etag(strategy.version)
    return strategy


@router.get(
    "/{strategy_id}/versions", response_model=Page[StrategyVersion], responses=error_responses(401, 404, 422)
)
def list_strategy_versions(
    strategy_id: UUID, principal: CurrentUser, page: PageParams, context: Context
) -> Page[StrategyVersion]:
    """Every version of the strategy, newest first."""
    rows = service.list_strategy_versions(
        context.database,
        principal.user_id,
        strategy_id,
        before_version=before_number(page, "version"),
        limit=page.limit + 1,
    )
    return Page[StrategyVersion].build(rows, page, lambda v: {"version": v.version})
