"""The circuit breaker: daily loss and drawdown trip a user to exits only."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tekoa.domain.execution import TradingState
from tekoa.risk.breaker import Performance, assess, measures, reset
from tekoa.risk.limits import QuoteLossLimit, RiskLimits, RiskTracking, Trip

DAY = date(2026, 3, 2)
NEXT_DAY = date(2026, 3, 3)
CAPITAL = Decimal(10_000)


def _at(equity: str, capital: Decimal = CAPITAL) -> Performance:
    return Performance(equity=Decimal(equity), capital=capital)


def _walk(equities: list[tuple[date, str]], limits: RiskLimits) -> tuple[RiskTracking, list[str | None]]:
    tracking, messages = RiskTracking(), []
    for day, equity in equities:
        tracking, message = assess(tracking, _at(equity), limits, day)
        messages.append(message)
    return tracking, messages


def test_drawdown_is_measured_from_the_peak_not_from_the_start() -> None:
    limits = RiskLimits(
        max_drawdown_pct=Decimal(20), daily_loss_limit=QuoteLossLimit(type="quote", amount=Decimal(10**6))
    )
    # +30 %, then back to +4 %: still above the start, but 20 % below the peak of 13 000.
    tracking, messages = _walk(
        [(DAY, "10000"), (DAY, "13000"), (NEXT_DAY, "10500"), (NEXT_DAY, "10400")], limits
    )

    assert messages[:3] == [None, None, None]
    assert tracking.state is TradingState.REDUCING and tracking.trip is Trip.DRAWDOWN
    assert messages[3] == "max drawdown reached: 20 % below the peak equity of 13000 (limit 20 %)"


def test_the_daily_loss_trips_and_lifts_itself_at_the_utc_rollover() -> None:
    limits = RiskLimits()  # 5 % of the day-start equity
    tracking, messages = _walk([(DAY, "10000"), (DAY, "9600"), (DAY, "9500")], limits)

    assert messages[1] is None
    assert messages[2] == "daily loss limit reached: 500 lost today (limit 500)"
    assert tracking.state is TradingState.REDUCING and tracking.trip is Trip.DAILY_LOSS

    tracking, message = assess(tracking, _at("9500"), limits, NEXT_DAY)
    assert (
        message is None
        and tracking.state is TradingState.ACTIVE
        and tracking.day_start_performance == Decimal(-500)
    )


def test_without_the_daily_reset_a_trip_stays_until_reset_by_hand() -> None:
    limits = RiskLimits(reset_daily_loss_at_utc_midnight=False)
    tracking, _ = _walk([(DAY, "10000"), (DAY, "9000")], limits)

    tracking, _ = assess(tracking, _at("9000"), limits, NEXT_DAY)
    assert tracking.state is TradingState.REDUCING

    tracking = reset(_at("9000"), NEXT_DAY)
    assert tracking.state is TradingState.ACTIVE and tracking.peak_performance == Decimal(-1000)


def test_a_deposit_or_a_paper_reset_is_neither_a_gain_nor_a_loss() -> None:
    limits = RiskLimits()
    tracking, _ = assess(RiskTracking(), _at("9800"), limits, DAY)
    # A reset restores 10 000 by moving capital: performance (equity - capital) is unchanged.
    tracking, message = assess(tracking, _at("10000", capital=Decimal(10_200)), limits, DAY)

    assert message is None and measures(tracking, _at("10000", capital=Decimal(10_200))).today_pnl == 0


def test_a_kill_switch_is_never_loosened_by_the_breaker() -> None:
    halted = RiskTracking(state=TradingState.HALTED, reason="kill switch", trip=Trip.KILL_SWITCH)

    tracking, message = assess(halted, _at("12000"), RiskLimits(), NEXT_DAY)

    assert message is None and tracking.state is TradingState.HALTED


def test_measures_show_todays_pnl_and_the_drawdown() -> None:
    tracking, _ = _walk([(DAY, "10000"), (DAY, "11000")], RiskLimits())

    shown = measures(tracking, _at("10450"))

    assert shown.today_pnl == Decimal(450)
    assert shown.peak_equity == Decimal(11_000)
    assert shown.drawdown_pct == Decimal(5)
