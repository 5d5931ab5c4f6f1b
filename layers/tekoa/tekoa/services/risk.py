"""A user's risk: limits, trading state, today's P&L and the drawdown; the kill switch and the
reset. The platform-wide state is the operators' (`tekoa halt` / `tekoa resume`).

The kill switch halts the user (every account: the executor refuses their queued orders) and
cancels every working order — paper ones at once, live ones through the order queue. With
`flatten` it also claims a reduce-only market sell of every open position, under one client
order id per position, and sends it through the order queue: the only orders a halted account
accepts (`tekoa.execution.admission.FLATTEN_SOURCE`), and never two for a position. Only a
reset lifts a kill switch or a drawdown trip; a daily-loss trip lifts itself at the UTC day's
rollover when the limits say so. Every change is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tekoa.aws.queues import OrderQueue
from tekoa.db import accounts as account_rows
from tekoa.db import activity as activity_rows
from tekoa.db import evaluations as evaluation_rows
from tekoa.db import orders as order_rows
from tekoa.db import positions as position_rows
from tekoa.db import risk as rows
from tekoa.db.audit import record_audit
from tekoa.db.connection import Database, service_transaction, tenant_transaction
from tekoa.domain.bots import TradingMode
from tekoa.domain.execution import Order, OrderAction, OrderRefused, TradingState
from tekoa.domain.orders import OrderSide, OrderType, client_order_id
from tekoa.domain.resources import ActivityLevel
from tekoa.domain.text import Reason
from tekoa.domain.wire import DecimalText
from tekoa.execution import booking
from tekoa.execution.admission import FLATTEN_SOURCE, CostModel, OrderAsk
from tekoa.execution.messages import CancelMessage, OrderMessage
from tekoa.execution.writes import Writes
from tekoa.risk import breaker
from tekoa.risk.limits import RiskLimits, RiskTracking, Trip
from tekoa.services.orders import ClientOrderIdTaken, claim_order, send_claimed


class RiskView(BaseModel):
    """Your risk right now (money across all your accounts, valued at the last trades)."""

    state: TradingState = Field(description="active, reducing (exits only) or halted.")
    reason: str | None
    trip: Trip | None = Field(description="What took the state off active.")
    platform_state: TradingState = Field(description="The operators' switch for everyone.")
    platform_reason: str | None
    limits: RiskLimits
    equity: DecimalText
    today_pnl: DecimalText = Field(
        description="Change of equity since the UTC day began, capital moves aside."
    )
    day_start_equity: DecimalText
    peak_equity: DecimalText
    drawdown_pct: DecimalText = Field(description="Fall of equity from its peak, in percent.")


class KillSwitchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = Field("kill switch", min_length=1, max_length=200)
    flatten: bool = Field(
        False,
        description="Also close every open position with a market sell (the only orders a halted"
        " account accepts). Calling again never sells a position twice.",
    )


class KillSwitchResult(BaseModel):
    risk: RiskView
    canceled_orders: int = Field(
        description="Working orders cancelled (paper) or sent to be cancelled (live)."
    )
    flattening_orders: int = Field(
        0, description="Market sells placed to close open positions (with `flatten`)."
    )
    not_flattened: list[str] = Field(
        default_factory=list, description="Positions that could not be closed now, and why."
    )


def flatten_client_order_id(position_id: UUID) -> str:
    """The kill switch's exit of one position: one id per position, so a second kill switch
    finds the first one's order instead of selling again."""
    return client_order_id(str(position_id), 0, "flatten")


def _performance(conn: Any, user_id: UUID) -> breaker.Performance:
    accounts = evaluation_rows.user_accounts(conn, [user_id]).get(user_id, [])
    books = evaluation_rows.account_money(conn, accounts).values()
    return breaker.Performance(
        equity=sum((Decimal(b["available"]) + b["held"] + b["positions"] for b in books), Decimal(0)),
        capital=sum((Decimal(b["capital"]) for b in books), Decimal(0)),
    )


def _view(conn: Any, user_id: UUID, limits: RiskLimits, tracking: RiskTracking) -> RiskView:
    measures = breaker.measures(tracking, _performance(conn, user_id))
    platform_state, platform_reason = account_rows.platform_trading_state(conn)
    two = Decimal("0.01")
    return RiskView(
        state=tracking.state,
        reason=tracking.reason,
        trip=tracking.trip,
        platform_state=platform_state,
        platform_reason=platform_reason,
        limits=limits,
        equity=measures.equity,
        today_pnl=measures.today_pnl,
        day_start_equity=measures.day_start_equity,
        peak_equity=measures.peak_equity,
        drawdown_pct=measures.drawdown_pct.quantize(two),
    )


def get_risk(database: Database, user_id: UUID) -> RiskView:
    with database.connection() as conn, tenant_transaction(conn, user_id):
        limits, tracking = rows.user_risk(conn, user_id)
        return _view(conn, user_id, limits, tracking)


def set_limits(
    database: Database, user_id: UUID, limits: RiskLimits, *, request_id: str | None = None
) -> RiskView:
    """Replace your limits (they count across all your bots and exchanges)."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        rows.user_risk(conn, user_id, for_update=True)
        rows.save_limits(conn, user_id, limits)
        record_audit(
            conn,
            user_id=user_id,
            action="risk.limits_changed",
            target_type="risk",
            detail=limits.model_dump(mode="json"),
            request_id=request_id,
        )
        limits, tracking = rows.user_risk(conn, user_id)
        return _view(conn, user_id, limits, tracking)


def kill_switch(
    database: Database,
    queue: OrderQueue,
    user_id: UUID,
    *,
    reason: str,
    flatten: bool = False,
    costs: CostModel | None = None,
    request_id: str | None = None,
) -> KillSwitchResult:
    """Halt all your trading and cancel every working order; with `flatten`, close every open
    position at market too (see the module docstring)."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    messages: list[OrderMessage] = []
    canceled = 0
    exits: list[Order] = []
    not_flattened: list[str] = []
    with database.connection() as conn, tenant_transaction(conn, user_id):
        limits, tracking = rows.user_risk(conn, user_id, for_update=True)
        tracking = tracking.model_copy(
            update={
                "state": TradingState.HALTED,
                "reason": f"kill switch: {reason}",
                "trip": Trip.KILL_SWITCH,
            }
        )
        rows.save_tracking(conn, user_id, tracking)
        writes = Writes()
        for account in account_rows.list_accounts(conn, user_id):
            account = account_rows.get_account(conn, user_id, account.id, for_update=True) or account
            for order in order_rows.working_orders(conn, user_id, account.id):
                if order.intent.get("source") == FLATTEN_SOURCE:
                    continue  # an earlier kill switch's exit, on its way: the halt lets it through
                canceled += 1
                if account.mode is TradingMode.PAPER:
                    booking.finish(writes, user_id, account, order, OrderAction.CANCEL, reason="kill switch")
                else:
                    messages.append(
                        CancelMessage(
                            user_id=user_id,
                            account_id=account.id,
                            enqueued_at=now,
                            target_client_order_id=order.client_order_id,
                            reason="kill switch",
                        )
                    )
        writes.flush(conn)
        if flatten:
            exits, not_flattened = _flatten(conn, user_id, costs or CostModel())
        record_audit(
            conn,
            user_id=user_id,
            action="risk.kill_switch",
            target_type="risk",
            detail={
                "reason": reason,
                "canceled_orders": canceled,
                "flatten": flatten,
                "flattening_orders": [order.client_order_id for order in exits],
                "not_flattened": not_flattened,
            },
            request_id=request_id,
        )
        flattened = f"; {len(exits)} positions being closed at market" if flatten else ""
        activity_rows.insert_activity(
            conn,
            user_id,
            level=ActivityLevel.WARNING,
            message=f"Kill switch: trading halted ({reason}); {canceled} working orders cancelled{flattened}",
        )
        view = _view(conn, user_id, limits, tracking)
    if messages:
        queue.send(messages)  # the cancels first: in each account's FIFO group they precede the exits
    for order in exits:
        send_claimed(queue, user_id, order)
    return KillSwitchResult(
        risk=view, canceled_orders=canceled, flattening_orders=len(exits), not_flattened=not_flattened
    )


def _flatten(conn: Any, user_id: UUID, costs: CostModel) -> tuple[list[Order], list[str]]:
    """A reduce-only market sell of every open position, claimed under a per-position id (the
    accounts are locked already). A position whose exit exists from an earlier kill switch is
    left to it; one that cannot be sold now (no recent price, a live account's exits still on
    the exchange) is reported, not guessed at."""
    exits: list[Order] = []
    refused: list[str] = []
    accounts = {account.id: account for account in account_rows.list_accounts(conn, user_id)}
    positions = position_rows.list_positions(
        conn, user_id, is_open=True, bot_id=None, account_id=None, after=None, limit=10_000
    )
    for position in positions:
        account = accounts[position.account_id]
        try:
            with conn.transaction():  # a refusal leaves nothing of this position's exit behind
                exits.append(
                    claim_order(
                        conn,
                        user_id,
                        account,
                        costs,
                        symbol=position.symbol,
                        bot_id=position.bot_id,
                        client_order_id=flatten_client_order_id(position.id),
                        ask=OrderAsk(
                            side=OrderSide.SELL,
                            type=OrderType.MARKET,
                            quantity=position.quantity,
                            limit_price=None,
                            stop_price=None,
                            reduce_only=True,
                        ),
                        strict=False,
                        source=FLATTEN_SOURCE,
                    )
                )
        except ClientOrderIdTaken:
            continue
        except OrderRefused as refusal:
            refused.append(f"{position.id} ({position.symbol}): {refusal.message}")
    return exits, refused


def reset(database: Database, user_id: UUID, *, request_id: str | None = None) -> RiskView:
    """Back to active; today's start and the peak are measured again from now."""
    with database.connection() as conn, tenant_transaction(conn, user_id):
        limits, before = rows.user_risk(conn, user_id, for_update=True)
        tracking = breaker.reset(_performance(conn, user_id), datetime.now(UTC).date())
        rows.save_tracking(conn, user_id, tracking)
        record_audit(
            conn,
            user_id=user_id,
            action="risk.reset",
            target_type="risk",
            detail={"from": before.state.value, "trip": None if before.trip is None else before.trip.value},
            request_id=request_id,
        )
        activity_rows.insert_activity(
            conn,
            user_id,
            level=ActivityLevel.INFO,
            message=f"Risk reset: trading active again (was {before.state})",
        )
        return _view(conn, user_id, limits, tracking)


def set_platform_state(database: Database, state: TradingState, *, reason: str | None) -> None:
    """The operators' switch (`tekoa halt` / `tekoa resume`): every user, every order."""
    with database.connection() as conn, service_transaction(conn):
        account_rows.set_platform_trading_state(conn, state, reason)
