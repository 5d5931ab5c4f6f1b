"""The circuit breaker: a user's daily loss and drawdown, measured across all of the user's
accounts, trip the user to `reducing` (exits only) automatically.

Performance is equity less the capital put in (`Performance.value`): a deposit or a paper
reset moves equity and capital alike, so it is neither a gain nor a loss. The drawdown is
measured from the *peak* performance, not from the start (hummingbot #2969): a bot that made
30 % and gave back 20 % of its peak equity has drawn down 20 %.

* At the first assessment of a UTC day the day's start value is taken; a daily-loss trip lifts
  itself then when the limits say so.
* Daily loss: the day's fall in performance reaches the limit (an amount, or a percentage of
  the equity at the start of the day).
* Drawdown: (peak equity - equity) / peak equity reaches `max_drawdown_pct`, where peak equity
  is the capital plus the peak performance. Only `POST /v1/risk/reset` lifts it.

Automatic trips go to `reducing`, never `halted`: a halted user's protective stops could not
execute, and a breaker must not leave positions unprotected. Only the kill switch halts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from tekoa.domain.execution import TradingState
from tekoa.risk.limits import PercentLossLimit, RiskLimits, RiskTracking, Trip

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Performance:
    """A user's money across all accounts, in quote currency."""

    equity: Decimal
    """Quote balances (available and held) plus open positions at their last price."""
    capital: Decimal
    """Net capital put in: deposits and paper resets."""

    @property
    def value(self) -> Decimal:
        """What trading made: equity less capital."""
        return self.equity - self.capital


@dataclass(frozen=True, slots=True)
class Measures:
    """What `GET /v1/risk` shows."""

    equity: Decimal
    today_pnl: Decimal
    day_start_equity: Decimal
    peak_equity: Decimal
    drawdown_pct: Decimal


def measures(tracking: RiskTracking, performance: Performance) -> Measures:
    """Today's P&L and the drawdown from the peak, as of `performance`."""
    value = performance.value
    start = tracking.day_start_performance if tracking.day_start_performance is not None else value
    peak = max(value, tracking.peak_performance if tracking.peak_performance is not None else value)
    peak_equity = performance.capital + peak
    drawdown = (peak - value) / peak_equity * HUNDRED if peak_equity > 0 else ZERO
    return Measures(
        equity=performance.equity,
        today_pnl=value - start,
        day_start_equity=performance.capital + start,
        peak_equity=peak_equity,
        drawdown_pct=drawdown,
    )


def assess(
    tracking: RiskTracking, performance: Performance, limits: RiskLimits, today: date
) -> tuple[RiskTracking, str | None]:
    """The tracking after seeing `performance` on `today`, and the message of a new trip (None
    when nothing tripped). Never loosens a state except a daily-loss trip at the day's rollover."""
    value = performance.value
    state, reason, trip = tracking.state, tracking.reason, tracking.trip
    day_start = tracking.day_start_performance
    if tracking.day != today or day_start is None:
        day_start = value
        if trip is Trip.DAILY_LOSS and limits.reset_daily_loss_at_utc_midnight:
            state, reason, trip = TradingState.ACTIVE, None, None
    peak = value if tracking.peak_performance is None else max(tracking.peak_performance, value)
    updated = tracking.model_copy(
        update={
            "state": state,
            "reason": reason,
            "trip": trip,
            "day": today,
            "day_start_performance": day_start,
            "peak_performance": peak,
        }
    )
    if state is not TradingState.ACTIVE:
        return updated, None
    loss = day_start - value
    limit = limits.daily_loss_limit
    allowed = (
        (performance.capital + day_start) * limit.pct / HUNDRED
        if isinstance(limit, PercentLossLimit)
        else limit.amount
    )
    if loss > 0 and loss >= allowed:
        message = f"daily loss limit reached: {_money(loss)} lost today (limit {_money(allowed)})"
        return _tripped(updated, Trip.DAILY_LOSS, message), message
    peak_equity = performance.capital + peak
    if peak_equity > 0:
        drawdown = (peak - value) / peak_equity * HUNDRED
        if drawdown >= limits.max_drawdown_pct:
            message = (
                f"max drawdown reached: {_money(drawdown)} % below the peak equity of {_money(peak_equity)}"
                f" (limit {limits.max_drawdown_pct} %)"
            )
            return _tripped(updated, Trip.DRAWDOWN, message), message
    return updated, None


def reset(performance: Performance, today: date) -> RiskTracking:
    """Back to active (`POST /v1/risk/reset`): the day and the peak start again from now."""
    value = performance.value
    return RiskTracking(
        state=TradingState.ACTIVE,
        day=today,
        day_start_performance=value,
        peak_performance=value,
    )


def _tripped(tracking: RiskTracking, trip: Trip, message: str) -> RiskTracking:
    return tracking.model_copy(update={"state": TradingState.REDUCING, "reason": message, "trip": trip})


def _money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")).normalize(), "f")
