"""Each user's risk row (`user_risk`): limits, trading state, the circuit breaker's tracking.

The user's trading state is mirrored onto every account of the user (`accounts.trading_state`)
in the same transaction, so the executor — which reads the account's state under its lock at
execution time — honours a trip or a kill switch for orders already queued. A user without a
row has the default limits and is active.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from tekoa.domain.execution import TradingState
from tekoa.risk.limits import RiskLimits, RiskTracking

_COLUMNS = (
    "user_id, limits::text AS limits, state, reason, trip, day, day_start_performance, peak_performance"
)


def _parse(row: dict[str, Any]) -> tuple[RiskLimits, RiskTracking]:
    limits = RiskLimits.model_validate_json(row["limits"])
    tracking = RiskTracking(
        state=TradingState(row["state"]),
        reason=row["reason"],
        trip=row["trip"],
        day=row["day"],
        day_start_performance=row["day_start_performance"],
        peak_performance=row["peak_performance"],
    )
    return limits, tracking


def user_risks(
    conn: psycopg.Connection[Any], user_ids: Sequence[UUID]
) -> dict[UUID, tuple[RiskLimits, RiskTracking]]:
    """The risk of each user in `user_ids` (the defaults for users without a row). Raises when a
    stored row cannot be read: the caller fails closed."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM user_risk WHERE user_id = ANY(%s)", (list(user_ids),))  # noqa: S608 -- fixed columns
        found = {row["user_id"]: _parse(row) for row in cur.fetchall()}
    return {user_id: found.get(user_id, (RiskLimits(), RiskTracking())) for user_id in user_ids}


def user_risk(
    conn: psycopg.Connection[Any], user_id: UUID, *, for_update: bool = False
) -> tuple[RiskLimits, RiskTracking]:
    """One user's risk (inside a tenant or service transaction)."""
    if for_update:
        conn.execute("INSERT INTO user_risk (user_id) VALUES (%s) ON CONFLICT DO NOTHING", (user_id,))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM user_risk WHERE user_id = %s"  # noqa: S608 -- fixed columns
            + (" FOR UPDATE" if for_update else ""),
            (user_id,),
        )
        row = cur.fetchone()
    return (RiskLimits(), RiskTracking()) if row is None else _parse(row)


def save_tracking(conn: psycopg.Connection[Any], user_id: UUID, tracking: RiskTracking) -> None:
    """Store the breaker's tracking and state; the accounts follow the state when it changed."""
    previous = conn.execute(
        "SELECT state FROM user_risk WHERE user_id = %s FOR UPDATE", (user_id,)
    ).fetchone()
    conn.execute(
        "INSERT INTO user_risk (user_id, state, reason, trip, day, day_start_performance, peak_performance)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, reason = excluded.reason,"
        " trip = excluded.trip, day = excluded.day, day_start_performance = excluded.day_start_performance,"
        " peak_performance = excluded.peak_performance, updated_at = now(),"
        " changed_at = CASE WHEN user_risk.state <> excluded.state THEN now() ELSE user_risk.changed_at END",
        (
            user_id,
            tracking.state.value,
            tracking.reason,
            None if tracking.trip is None else tracking.trip.value,
            tracking.day,
            tracking.day_start_performance,
            tracking.peak_performance,
        ),
    )
    if previous is None or previous[0] != tracking.state.value:
        set_accounts_state(conn, user_id, tracking.state, tracking.reason)


def save_limits(conn: psycopg.Connection[Any], user_id: UUID, limits: RiskLimits) -> None:
    conn.execute(
        "INSERT INTO user_risk (user_id, limits) VALUES (%s, %s)"
        " ON CONFLICT (user_id) DO UPDATE SET limits = excluded.limits, updated_at = now()",
        (user_id, json.dumps(limits.model_dump(mode="json"))),
    )


def set_accounts_state(
    conn: psycopg.Connection[Any], user_id: UUID, state: TradingState, reason: str | None
) -> None:
    """Every account of the user takes the user's trading state (the executor reads it)."""
    conn.execute(
        "UPDATE accounts SET trading_state = %s, trading_state_reason = %s, updated_at = now()"
        " WHERE user_id = %s"
        " AND (trading_state, coalesce(trading_state_reason, '')) IS DISTINCT FROM (%s, %s)",
        (state.value, None if reason is None else reason[:500], user_id, state.value, reason or ""),
    )
