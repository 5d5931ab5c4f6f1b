"""Pre-trade checks: each intent of a decision approved, resized or rejected, with the reason."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tekoa.domain.bots import RiskSettings
from tekoa.domain.execution import TradingState
from tekoa.domain.orders import (
    CancelIntent,
    OrderIntent,
    OrderSide,
    OrderType,
    ProtectionSpec,
    StopSpec,
    cancel,
    place,
)
from tekoa.risk.checks import RiskContext, Verdict, check_intents, data_problem, stop_distance
from tekoa.risk.limits import RiskLimits

BOT = "5b7e9c1e-0000-4000-8000-000000000001"


def _context(**overrides: object) -> RiskContext:
    values: dict[str, object] = {
        "state": TradingState.ACTIVE,
        "state_reason": None,
        "limits": RiskLimits(),
        "settings": RiskSettings(risk_per_trade_pct=Decimal(2), max_position_notional=Decimal(100_000)),
        "equity": Decimal(10_000),
        "reference_price": Decimal(100),
        "last_price": Decimal(100),
        "min_notional": Decimal(5),
    }
    values.update(overrides)
    return RiskContext(**values)  # type: ignore[arg-type]


def _entry(
    quantity: str, *, stop_pct: str | None = "2", price: str | None = None, leg: str = "entry"
) -> OrderIntent:
    protection = (
        None if stop_pct is None else ProtectionSpec(stop=StopSpec(kind="percent", value=Decimal(stop_pct)))
    )
    return place(
        BOT,
        0,
        leg,
        OrderSide.BUY,
        OrderType.MARKET if price is None else OrderType.LIMIT,
        Decimal(quantity),
        price=None if price is None else Decimal(price),
        protection=protection,
    )


def _exit(quantity: str) -> OrderIntent:
    return place(BOT, 0, "exit", OrderSide.SELL, OrderType.MARKET, Decimal(quantity), reduce_only=True)


def test_an_entry_within_every_limit_is_approved_unchanged() -> None:
    (checked,) = check_intents([_entry("10")], _context())  # loses 20 at a 2 % stop: 0.2 % of equity

    assert checked.verdict is Verdict.APPROVED and checked.intent == _entry("10")


def test_an_entry_risking_more_than_the_risk_per_trade_is_cut_to_it() -> None:
    # 2 % of 10 000 = 200 at risk; a 2 % stop at 100 loses 2 per unit: at most 100 units.
    (checked,) = check_intents([_entry("500")], _context())

    assert checked.verdict is Verdict.RESIZED
    assert isinstance(checked.intent, OrderIntent) and checked.intent.quantity == Decimal(100)
    assert checked.intent.client_order_id == _entry("500").client_order_id
    assert checked.reason is not None and "risk 2 % of equity" in checked.reason


def test_without_a_stop_the_whole_order_value_counts_as_at_risk() -> None:
    (checked,) = check_intents([_entry("5", stop_pct=None)], _context())

    assert isinstance(checked.intent, OrderIntent) and checked.intent.quantity == Decimal(2)  # 200 / 100


def test_the_bots_largest_position_caps_what_it_may_add() -> None:
    context = _context(
        settings=RiskSettings(risk_per_trade_pct=Decimal(10), max_position_notional=Decimal(1000)),
        position_quantity=Decimal(7),
    )
    (checked,) = check_intents([_entry("10", stop_pct="50")], context)

    assert isinstance(checked.intent, OrderIntent) and checked.intent.quantity == Decimal(3)
    assert checked.reason is not None and "largest position" in checked.reason


@settings(max_examples=300, deadline=None)
@given(
    equity=st.decimals(min_value=Decimal(1), max_value=Decimal(10) ** 9, places=2),
    risk_pct=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10), places=2),
    price=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10) ** 6, places=4),
    quantity=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10) ** 7, places=4),
    stop=st.one_of(
        st.none(),
        st.tuples(
            st.just("percent"), st.decimals(min_value=Decimal("0.01"), max_value=Decimal(99), places=2)
        ),
        st.tuples(
            st.just("distance"),
            st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10) ** 5, places=4),
        ),
        st.tuples(
            st.just("price"), st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10) ** 6, places=4)
        ),
    ),
)
def test_sizing_never_risks_more_than_the_risk_per_trade(
    equity: Decimal, risk_pct: Decimal, price: Decimal, quantity: Decimal, stop: tuple[str, Decimal] | None
) -> None:
    protection = None if stop is None else ProtectionSpec(stop=StopSpec(kind=stop[0], value=stop[1]))  # type: ignore[arg-type]
    intent = place(
        BOT, 0, "entry", OrderSide.BUY, OrderType.LIMIT, quantity, price=price, protection=protection
    )
    context = _context(
        equity=equity,
        settings=RiskSettings(risk_per_trade_pct=risk_pct, max_position_notional=Decimal(10) ** 12),
        reference_price=price,
        last_price=price,
        min_notional=None,
    )
    (checked,) = check_intents([intent], context)

    if checked.verdict is Verdict.REJECTED:
        return
    approved = checked.intent
    assert isinstance(approved, OrderIntent)
    distance = stop_distance(protection, OrderSide.BUY, price)
    loss_at_stop = Fraction(approved.quantity) * Fraction(distance)
    assert loss_at_stop <= Fraction(equity) * Fraction(risk_pct) / 100
    assert approved.quantity <= quantity


def test_a_halted_user_sends_nothing_but_cancels() -> None:
    withdraw = cancel(BOT, 0, "tkabc", "grid-b1", "no longer wanted")
    checked = check_intents(
        [_entry("1"), _exit("1"), withdraw], _context(state=TradingState.HALTED, state_reason="kill switch")
    )

    assert [c.verdict for c in checked] == [Verdict.REJECTED, Verdict.REJECTED, Verdict.APPROVED]
    assert checked[0].reason == "trading is halted: kill switch"
    assert isinstance(checked[2].intent, CancelIntent)


def test_a_reducing_user_may_only_exit() -> None:
    checked = check_intents([_entry("1"), _exit("1")], _context(state=TradingState.REDUCING))

    assert [c.verdict for c in checked] == [Verdict.REJECTED, Verdict.APPROVED]
    assert checked[0].reason == "exits only"


def test_a_market_order_decided_far_from_the_last_trade_is_refused() -> None:
    (checked,) = check_intents([_entry("1")], _context(reference_price=Decimal(100), last_price=Decimal(94)))

    assert checked.verdict is Verdict.REJECTED
    assert checked.reason is not None and "moved 6.38 %" in checked.reason


def test_a_limit_far_below_the_market_is_fine_but_one_far_through_it_is_refused() -> None:
    resting, through = check_intents(
        [_entry("1", price="80", leg="grid-b0"), _entry("1", price="106", leg="grid-b1")], _context()
    )

    assert resting.verdict is Verdict.APPROVED
    assert (
        through.verdict is Verdict.REJECTED and through.reason is not None and "6 % through" in through.reason
    )


def test_an_exit_at_market_is_never_trapped_by_the_price_check() -> None:
    (checked,) = check_intents([_exit("1")], _context(reference_price=Decimal(100), last_price=Decimal(50)))

    assert checked.verdict is Verdict.APPROVED


def test_an_order_worth_less_than_the_market_minimum_is_refused() -> None:
    (checked,) = check_intents([_entry("0.04")], _context())

    assert checked.verdict is Verdict.REJECTED
    assert checked.reason == "order value 4 is below the market's minimum of 5"


def test_no_new_position_once_the_user_holds_the_limit() -> None:
    context = _context(limits=RiskLimits(max_open_positions=2), user_open_positions=2)
    (opening,) = check_intents([_entry("1")], context)
    (adding,) = check_intents(
        [_entry("1")],
        _context(
            limits=RiskLimits(max_open_positions=2), user_open_positions=2, position_quantity=Decimal(1)
        ),
    )

    assert opening.verdict is Verdict.REJECTED and opening.reason == "2 positions open: the limit is 2"
    assert adding.verdict is Verdict.APPROVED


def test_a_bot_sends_at_most_its_order_rate() -> None:
    context = _context(limits=RiskLimits(max_orders_per_minute=3), orders_last_minute=1)
    legs = [_entry("1", price="99", leg=f"grid-b{k}") for k in range(4)]

    assert [c.verdict for c in check_intents(legs, context)] == [
        Verdict.APPROVED,
        Verdict.APPROVED,
        Verdict.REJECTED,
        Verdict.REJECTED,
    ]


@pytest.mark.parametrize(
    ("close_ms", "fresh", "expected"),
    [
        (None, True, "no candle for this period: the market has no data"),
        (0, True, "stale data: the candle closed 300 s ago"),
        (250_000, False, "stale data: silent feed"),
        (250_000, True, None),
    ],
)
def test_the_stale_data_guard(close_ms: int | None, fresh: bool, expected: str | None) -> None:
    assert (
        data_problem(
            candle_close_ms=close_ms,
            now_ms=300_000,
            max_candle_age_ms=120_000,
            market_fresh=fresh,
            market_reason="silent feed",
        )
        == expected
    )
