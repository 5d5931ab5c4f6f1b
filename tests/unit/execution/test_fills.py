"""The fill model: every order type against a candle's path and against a single trade,
fees and slippage, the path rule with its tie, and the Decimal booking at the edge."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tekoa.domain.orders import OrderSide, OrderType
from tekoa.execution.fills import (
    Costs,
    affordable_quantity,
    booked_fee,
    booked_price,
    booked_quantity,
    candle_path,
    fill_on_candle,
    fill_on_trade,
)

NO_COSTS = Costs()
COSTS = Costs.from_pct(0.1, maker_pct=0.02, slippage_pct=0.05)
BUY, SELL = OrderSide.BUY, OrderSide.SELL


def test_path_visits_the_extreme_nearer_the_open_first() -> None:
    assert candle_path(100.0, 110.0, 98.0, 105.0) == (100.0, 98.0, 110.0, 105.0)
    assert candle_path(100.0, 102.0, 90.0, 95.0) == (100.0, 102.0, 90.0, 95.0)


def test_path_tie_goes_down_first_on_an_up_candle_and_up_first_on_a_down_candle() -> None:
    assert candle_path(100.0, 105.0, 95.0, 101.0) == (100.0, 95.0, 105.0, 101.0)
    assert candle_path(100.0, 105.0, 95.0, 100.0) == (100.0, 95.0, 105.0, 100.0)
    assert candle_path(100.0, 105.0, 95.0, 99.0) == (100.0, 105.0, 95.0, 99.0)


def test_market_order_fills_at_the_open_with_slippage_against_the_trader_and_a_taker_fee() -> None:
    buy = fill_on_candle(BUY, OrderType.MARKET, None, (100.0, 110.0, 90.0, 105.0), 2.0, COSTS, arriving=True)
    sell = fill_on_trade(SELL, OrderType.MARKET, None, 100.0, 2.0, COSTS, arriving=True)

    assert buy is not None and sell is not None
    assert (buy.price, buy.maker, buy.point) == (pytest.approx(100.05), False, 0)
    assert buy.fee == pytest.approx(100.05 * 2 * 0.001)
    assert sell.price == pytest.approx(99.95)


def test_resting_limit_buy_fills_at_its_limit_as_maker_when_the_low_reaches_it() -> None:
    fill = fill_on_candle(BUY, OrderType.LIMIT, 95.0, (100.0, 103.0, 94.0, 99.0), 1.0, COSTS, arriving=False)

    assert fill is not None
    assert (fill.price, fill.maker, fill.point) == (95.0, True, 2)  # open -> high -> low: the low is point 2
    assert fill.fee == pytest.approx(95.0 * 0.0002)


def test_limit_buy_that_the_market_never_reaches_does_not_fill() -> None:
    assert (
        fill_on_candle(BUY, OrderType.LIMIT, 93.0, (100.0, 103.0, 94.0, 99.0), 1.0, COSTS, arriving=False)
        is None
    )
    assert fill_on_trade(BUY, OrderType.LIMIT, 93.0, 93.01, 1.0, COSTS, arriving=False) is None


def test_limit_reached_exactly_fills() -> None:
    fill = fill_on_trade(SELL, OrderType.LIMIT, 105.0, 105.0, 1.0, NO_COSTS, arriving=False)

    assert fill is not None and fill.price == 105.0


def test_marketable_limit_on_arrival_is_a_taker_at_the_open_never_worse_than_its_limit() -> None:
    cheap = fill_on_candle(
        BUY, OrderType.LIMIT, 101.0, (100.0, 102.0, 99.0, 101.0), 1.0, COSTS, arriving=True
    )
    capped = fill_on_candle(
        BUY, OrderType.LIMIT, 100.02, (100.0, 102.0, 99.0, 101.0), 1.0, COSTS, arriving=True
    )

    assert cheap is not None and capped is not None
    assert (cheap.price, cheap.maker, cheap.point) == (pytest.approx(100.05), False, 0)
    assert capped.price == 100.02  # slippage would have paid more than the limit


def test_resting_limit_gapped_through_fills_at_its_limit_not_the_better_open() -> None:
    fill = fill_on_candle(
        SELL, OrderType.LIMIT, 105.0, (110.0, 112.0, 108.0, 111.0), 1.0, COSTS, arriving=False
    )

    assert fill is not None and (fill.price, fill.maker, fill.point) == (105.0, True, 0)


def test_sell_stop_crossed_fills_at_the_stop_less_slippage_and_a_gap_fills_at_the_open() -> None:
    crossed = fill_on_candle(
        SELL, OrderType.STOP, 95.0, (100.0, 101.0, 90.0, 92.0), 1.0, COSTS, arriving=False
    )
    gapped = fill_on_candle(SELL, OrderType.STOP, 95.0, (93.0, 96.0, 90.0, 92.0), 1.0, COSTS, arriving=False)

    assert crossed is not None and gapped is not None
    assert (crossed.price, crossed.maker, crossed.point) == (pytest.approx(95.0 * 0.9995), False, 2)
    assert (gapped.price, gapped.point) == (pytest.approx(93.0 * 0.9995), 0)


def test_buy_stop_triggers_above_the_market() -> None:
    fill = fill_on_candle(
        BUY, OrderType.STOP, 104.0, (100.0, 106.0, 99.5, 105.0), 1.0, NO_COSTS, arriving=False
    )
    trade = fill_on_trade(BUY, OrderType.STOP, 104.0, 104.5, 1.0, NO_COSTS, arriving=False)

    assert fill is not None and trade is not None
    assert (fill.price, fill.point) == (104.0, 2)  # open -> low (nearer) -> high crosses 104
    assert trade.price == 104.5  # a trade is a jump: the stop fills at the trade price


def test_which_of_two_orders_fills_first_follows_the_path() -> None:
    # open 100 is nearer the high (103) than the low (90): the path goes up first
    candle = (100.0, 103.0, 90.0, 95.0)
    sell = fill_on_candle(SELL, OrderType.LIMIT, 102.0, candle, 1.0, NO_COSTS, arriving=False)
    buy = fill_on_candle(BUY, OrderType.LIMIT, 91.0, candle, 1.0, NO_COSTS, arriving=False)

    assert sell is not None and buy is not None
    assert sell.point < buy.point


def test_an_opening_buy_can_afford_its_fee() -> None:
    quantity = affordable_quantity(1000.0, 100.0, 0.001)

    assert quantity * 100.0 * 1.001 == pytest.approx(1000.0)
    assert affordable_quantity(0.0, 100.0, 0.001) == 0.0


def test_booking_rounds_against_the_trader_and_never_beyond_the_model() -> None:
    assert booked_price(100.123456, Decimal("0.01"), BUY) == Decimal("100.13")
    assert booked_price(100.123456, Decimal("0.01"), SELL) == Decimal("100.12")
    assert booked_price(0.1 + 0.2, Decimal("0.1"), BUY) == Decimal("0.3")  # float noise is not a tick
    assert booked_quantity(1.23456789, Decimal("0.001")) == Decimal("1.234")
    assert booked_quantity(Decimal("0.5"), Decimal("0.1")) == Decimal("0.5")
    assert booked_fee(0.0123401, Decimal("0.0001")) == Decimal("0.0124")


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan")])
def test_costs_must_be_fractions(bad: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        Costs(taker_fee=bad)
