"""Built-in bot parameters: valid examples, nonsense rejected at the right field, and the math
behind grid levels and DCA ladders."""

import math
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tekoa.domain.timeframes import Timeframe
from tekoa.strategies.params import (
    MIN_GRID_STEP_PCT,
    DcaParams,
    DipParams,
    GridParams,
    MomentumParams,
    RsiBelowConfirmation,
    ScalperParams,
)
from tekoa.strategies.units import OrderSize
from tests.unit.strategies.examples import DCA, DIP, GRID, MOMENTUM, SCALPER

EXAMPLES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (ScalperParams, SCALPER),
    (GridParams, GRID),
    (DcaParams, DCA),
    (DipParams, DIP),
    (MomentumParams, MOMENTUM),
]


def locs(excinfo: pytest.ExceptionInfo[ValidationError]) -> list[tuple[int | str, ...]]:
    return [error["loc"] for error in excinfo.value.errors()]


def reject(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[int | str, ...]]:
    with pytest.raises(ValidationError) as excinfo:
        model.model_validate(data)
    return locs(excinfo)


@pytest.mark.parametrize(("model", "data"), EXAMPLES, ids=lambda value: getattr(value, "__name__", ""))
def test_realistic_parameters_parse_and_round_trip(model: type[BaseModel], data: dict[str, Any]) -> None:
    params = model.model_validate(data)
    dumped = params.model_dump(mode="json")
    assert model.model_validate(dumped) == params
    assert model.model_validate_json(params.model_dump_json()) == params


@pytest.mark.parametrize(("model", "data"), EXAMPLES, ids=lambda value: getattr(value, "__name__", ""))
def test_unknown_fields_are_rejected(model: type[BaseModel], data: dict[str, Any]) -> None:
    assert reject(model, {**data, "leverage": 3}) == [("leverage",)]


def test_decimals_survive_round_trip_without_float_noise() -> None:
    params = ScalperParams.model_validate({**SCALPER, "take_profit_pct": 0.1})
    assert params.take_profit_pct == Decimal("0.1")
    assert params.model_dump(mode="json")["take_profit_pct"] == "0.1"


def test_rsi_confirmation_defaults() -> None:
    dip = DipParams.model_validate({**DIP, "confirmation": {"type": "rsi_below"}})
    assert dip.confirmation == RsiBelowConfirmation(type="rsi_below", period=14, threshold=Decimal(30))
    assert dip.timeframe is Timeframe.H1


# ------------------------------------------------------------------ nonsense, located


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"fast_ema_period": 21}, ("slow_ema_period",)),
        ({"fast_ema_period": 30}, ("slow_ema_period",)),
        ({"rsi_oversold": 70}, ("rsi_overbought",)),
        ({"rsi_overbought": 100}, ("rsi_overbought",)),
        ({"stop_loss_pct": 0}, ("stop_loss_pct",)),
        ({"take_profit_pct": 50}, ("take_profit_pct",)),
        ({"max_trades_per_hour": 0}, ("max_trades_per_hour",)),
        ({"order_size": {"amount": "-5"}}, ("order_size", "amount")),
        ({"order_size": {"amount": "5", "unit": "lots"}}, ("order_size", "unit")),
    ],
)
def test_scalper_nonsense(change: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert reject(ScalperParams, {**SCALPER, **change}) == [loc]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"lower_price": "36000"}, ("upper_price",)),
        ({"upper_price": "25000"}, ("upper_price",)),
        ({"lower_price": "0"}, ("lower_price",)),
        ({"levels": 0}, ("levels",)),
        ({"levels": 1}, ("levels",)),
        ({"levels": 501}, ("levels",)),
        ({"spacing": "fibonacci"}, ("spacing",)),
        ({"stop_loss_price": "25000"}, ("stop_loss_price",)),
        ({"take_profit_price": "35000"}, ("take_profit_price",)),
        ({"order_size": {"amount": "0"}}, ("order_size", "amount")),
    ],
)
def test_grid_nonsense(change: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert reject(GridParams, {**GRID, **change}) == [loc]


def test_grid_steps_too_small_to_cover_fees_are_rejected() -> None:
    with pytest.raises(ValidationError, match=r"only 0\.0524 % apart; at least 0\.1 %"):
        GridParams.model_validate(
            {**GRID, "lower_price": "100", "upper_price": "101", "levels": 20} | _no_stops()
        )


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"base_order_size": "-1"}, ("base_order_size",)),
        ({"safety_order_size": "0"}, ("safety_order_size",)),
        ({"max_safety_orders": 101}, ("max_safety_orders",)),
        ({"price_deviation_pct": "0"}, ("price_deviation_pct",)),
        ({"step_scale": "0.9"}, ("step_scale",)),
        ({"volume_scale": "11"}, ("volume_scale",)),
        ({"take_profit_pct": "0"}, ("take_profit_pct",)),
    ],
)
def test_dca_nonsense(change: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert reject(DcaParams, {**DCA, **change}) == [loc]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"drop_pct": "100"}, ("drop_pct",)),
        ({"drop_pct": "0"}, ("drop_pct",)),
        ({"trailing_buy_pct": "8"}, ("trailing_buy_pct",)),
        ({"lookback_bars": 1}, ("lookback_bars",)),
        ({"confirmation": {"type": "green_candles", "count": 0}}, ("confirmation", "green_candles", "count")),
        ({"confirmation": {"type": "moon_phase"}}, ("confirmation",)),
        ({"stop_loss_pct": None}, ("stop_loss_pct",)),
    ],
)
def test_dip_nonsense(change: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert reject(DipParams, {**DIP, **change}) == [loc]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"mode": {"type": "roc", "period": 10, "threshold_pct": 0}}, ("mode", "roc", "threshold_pct")),
        ({"mode": {"type": "breakout", "lookback": 1}}, ("mode", "breakout", "lookback")),
        ({"volume_confirmation": {"multiplier": "0.8"}}, ("volume_confirmation", "multiplier")),
        ({"trailing_stop_pct": "0"}, ("trailing_stop_pct",)),
        ({"take_profit_pct": "-1"}, ("take_profit_pct",)),
    ],
)
def test_momentum_nonsense(change: dict[str, Any], loc: tuple[str, ...]) -> None:
    assert reject(MomentumParams, {**MOMENTUM, **change}) == [loc]


# ------------------------------------------------------------------ grid levels


def test_arithmetic_grid_has_equal_steps() -> None:
    grid = GridParams.model_validate(
        {**GRID, "lower_price": "100", "upper_price": "200", "levels": 5, "spacing": "arithmetic"}
        | _no_stops()
    )
    assert grid.grid_prices() == (Decimal(100), Decimal(125), Decimal(150), Decimal(175), Decimal(200))


def test_geometric_grid_has_equal_ratios() -> None:
    grid = GridParams.model_validate(
        {**GRID, "lower_price": "100", "upper_price": "1600", "levels": 5} | _no_stops()
    )
    assert grid.grid_prices() == (Decimal(100), Decimal(200), Decimal(400), Decimal(800), Decimal(1600))


def test_two_level_grid_is_just_the_bounds() -> None:
    grid = GridParams.model_validate({**GRID, "levels": 2})
    assert grid.grid_prices() == (Decimal(25000), Decimal(35000))


def _no_stops() -> dict[str, Any]:
    return {"stop_loss_price": None, "take_profit_price": None}


@st.composite
def valid_grids(draw: st.DrawFn) -> GridParams:
    spacing = draw(st.sampled_from(["arithmetic", "geometric"]))
    lower = draw(st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(1_000_000), places=5))
    ratio = draw(st.decimals(min_value=Decimal("1.01"), max_value=Decimal(1000), places=3))
    upper = lower * ratio
    min_gain = float(MIN_GRID_STEP_PCT) / 100
    if spacing == "geometric":
        max_gaps = math.log(float(ratio)) / math.log1p(min_gain)
    else:
        max_gaps = (float(ratio) - 1) * (1 + min_gain) / (min_gain * float(ratio))
    gaps = draw(st.integers(min_value=1, max_value=max(1, min(499, math.floor(max_gaps * 0.999)))))
    return GridParams(
        lower_price=lower,
        upper_price=upper,
        levels=gaps + 1,
        spacing=spacing,
        order_size=OrderSize(amount=Decimal(10)),
    )


@settings(max_examples=150, deadline=None)
@given(valid_grids())
def test_grid_levels_strictly_increase_between_the_exact_bounds(grid: GridParams) -> None:
    prices = grid.grid_prices()
    assert len(prices) == grid.levels
    assert prices[0] == grid.lower_price
    assert prices[-1] == grid.upper_price
    assert all(lower < higher for lower, higher in pairwise(prices))
    tolerance = Decimal("1e-20")
    if grid.spacing == "geometric":
        ratios = [higher / lower for lower, higher in pairwise(prices)]
        assert max(ratios) - min(ratios) <= tolerance * max(ratios)
    else:
        steps = [higher - lower for lower, higher in pairwise(prices)]
        assert max(steps) - min(steps) <= tolerance * grid.upper_price
    assert grid.min_step_pct() >= MIN_GRID_STEP_PCT


# ------------------------------------------------------------------ DCA ladder


def test_dca_ladder_matches_a_hand_computation() -> None:
    dca = DcaParams.model_validate(DCA)
    ladder = dca.safety_orders()
    # steps 2, 3, 4.5, 6.75 % -> deviations 2, 5, 9.5, 16.25 %; sizes 50, 100, 200, 400
    assert [rung.step_pct for rung in ladder] == [Decimal("2"), Decimal("3"), Decimal("4.5"), Decimal("6.75")]
    assert [rung.deviation_pct for rung in ladder] == [
        Decimal("2"),
        Decimal("5"),
        Decimal("9.5"),
        Decimal("16.25"),
    ]
    assert [rung.size for rung in ladder] == [Decimal(50), Decimal(100), Decimal(200), Decimal(400)]
    assert [rung.cumulative_size for rung in ladder] == [
        Decimal(150),
        Decimal(250),
        Decimal(450),
        Decimal(850),
    ]
    assert dca.max_capital() == Decimal(850)
    assert ladder[-1].trigger_price(Decimal(1000)) == Decimal("837.5")


def test_dca_without_safety_orders_commits_only_the_base_order() -> None:
    dca = DcaParams.model_validate({**DCA, "max_safety_orders": 0})
    assert dca.safety_orders() == ()
    assert dca.max_capital() == Decimal(100)


@pytest.mark.parametrize(
    ("change", "deepest"),
    [
        ({"price_deviation_pct": "25", "step_scale": "1", "max_safety_orders": 4}, "100"),
        ({"price_deviation_pct": "10", "step_scale": "2", "max_safety_orders": 4}, "150"),
    ],
)
def test_dca_ladder_reaching_zero_price_is_rejected(change: dict[str, Any], deepest: str) -> None:
    with pytest.raises(ValidationError, match=f"total deviation of {deepest} %; it must stay below 100 %"):
        DcaParams.model_validate({**DCA, **change, "stop_loss_pct": None})


def test_dca_ladder_just_short_of_zero_is_allowed() -> None:
    dca = DcaParams.model_validate(
        {**DCA, "price_deviation_pct": "33", "step_scale": "1", "max_safety_orders": 3, "stop_loss_pct": None}
    )
    assert dca.safety_orders()[-1].deviation_pct == Decimal(99)


def test_dca_stop_must_lie_beyond_the_deepest_safety_order() -> None:
    with pytest.raises(ValidationError, match=r"stop_loss_pct \(15\) must exceed the deepest safety order's"):
        DcaParams.model_validate({**DCA, "stop_loss_pct": "15"})


@settings(max_examples=150, deadline=None)
@given(
    deviation=st.decimals(min_value=Decimal("0.1"), max_value=Decimal(20), places=2),
    step_scale=st.decimals(min_value=Decimal(1), max_value=Decimal(3), places=2),
    volume_scale=st.decimals(min_value=Decimal(1), max_value=Decimal(3), places=2),
    orders=st.integers(min_value=0, max_value=30),
)
def test_dca_ladder_invariants(
    deviation: Decimal, step_scale: Decimal, volume_scale: Decimal, orders: int
) -> None:
    data = {
        **DCA,
        "price_deviation_pct": deviation,
        "step_scale": step_scale,
        "volume_scale": volume_scale,
        "max_safety_orders": orders,
        "stop_loss_pct": None,
    }
    deepest = sum((deviation * step_scale**i for i in range(orders)), Decimal(0))
    # The reference uses powers, the ladder repeated products; at 28 digits they may round
    # apart by an ulp, so a ladder ending within that of 100 % has no single right answer.
    assume(abs(deepest - 100) > Decimal("1e-18"))
    if deepest >= 100:
        with pytest.raises(ValidationError, match="must stay below 100 %"):
            DcaParams.model_validate(data)
        return
    dca = DcaParams.model_validate(data)
    ladder = dca.safety_orders()
    assert len(ladder) == orders
    assert all(a.deviation_pct < b.deviation_pct for a, b in pairwise(ladder))
    assert all(rung.deviation_pct < 100 for rung in ladder)
    if ladder:
        assert abs(ladder[-1].deviation_pct - deepest) <= Decimal("1e-20")
    # Summed in another association than the ladder's running total: equal to 28 digits.
    expected_capital = dca.base_order_size + sum((rung.size for rung in ladder), Decimal(0))
    assert abs(dca.max_capital() - expected_capital) <= expected_capital * Decimal("1e-26")
