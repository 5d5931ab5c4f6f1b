"""/v1/risk: your risk across all your bots and exchanges — state, limits, today's P&L and the
drawdown from your peak equity — with the kill switch and the reset.

States: `active`; `reducing` (exits only: a daily-loss or drawdown trip, automatic); `halted`
(the kill switch: working orders cancelled, queued ones refused by the executor). A daily-loss
trip lifts itself at the UTC day's rollover (when `reset_daily_loss_at_utc_midnight`); the
drawdown and the kill switch only by `POST /v1/risk/reset`. The platform's own state (the
operators' `tekoa halt`) is shown beside yours. Kill switch, reset and limit changes are audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from functions.api.context import Context, request_id
from functions.api.errors import error_responses
from functions.api.security import CurrentUser, TradingUser
from tekoa.execution.admission import CostModel
from tekoa.risk.limits import RiskLimits
from tekoa.services import risk as service
from tekoa.services.risk import KillSwitchRequest, KillSwitchResult, RiskView

router = APIRouter(prefix="/v1/risk", tags=["risk"])


@router.get("", response_model=RiskView, responses=error_responses(401))
def get_risk(principal: CurrentUser, context: Context) -> RiskView:
    """Your trading state, limits, today's P&L and drawdown."""
    return service.get_risk(context.database, principal.user_id)


@router.put("/limits", response_model=RiskView, responses=error_responses(401, 403, 422))
def set_limits(body: RiskLimits, request: Request, principal: TradingUser, context: Context) -> RiskView:
    """Replace your limits (omitted fields take their defaults)."""
    return service.set_limits(context.database, principal.user_id, body, request_id=request_id(request))


@router.post("/kill-switch", response_model=KillSwitchResult, responses=error_responses(401, 403, 422))
def kill_switch(
    request: Request, principal: TradingUser, context: Context, body: KillSwitchRequest | None = None
) -> KillSwitchResult:
    """Halt all your trading now and cancel every working order; with `flatten`, close every
    open position at market too. `POST /v1/risk/reset` undoes the halt."""
    body = body or KillSwitchRequest()
    return service.kill_switch(
        context.database,
        context.order_queue,
        principal.user_id,
        reason=body.reason,
        flatten=body.flatten,
        costs=CostModel.from_settings(context.settings),
        request_id=request_id(request),
    )


@router.post("/reset", response_model=RiskView, responses=error_responses(401, 403))
def reset(request: Request, principal: TradingUser, context: Context) -> RiskView:
    """Trade again: back to active; today's start and the peak are measured from now."""
    return service.reset(context.database, principal.user_id, request_id=request_id(request))
