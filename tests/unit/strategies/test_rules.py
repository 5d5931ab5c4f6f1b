"""The rule language: parsing, limits, and what a rule set needs from the indicator layer."""

import copy
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from tekoa.domain.timeframes import Timeframe
from tekoa.strategies.rules import (
    INDICATOR_NAMES,
    MAX_CONDITION_DEPTH,
    AtrStop,
    BollingerParams,
    IndicatorKey,
    MacdParams,
    PeriodParams,
    RsiRef,
    RuleSet,
    SourcedPeriodParams,
    StructureCondition,
    condition_depth,
    condition_size,
    lookback_by_timeframe,
    max_lookback,
    required_indicators,
)
from tests.unit.strategies.examples import LEAF, realistic_rules


def rules_with_entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "timeframe": "1h",
        "entry": entry,
        "stop_loss": {"type": "percent", "pct": "2"},
        "position_sizing": {"type": "fixed_quote", "amount": "100"},
    }


def locs(excinfo: pytest.ExceptionInfo[ValidationError]) -> list[tuple[int | str, ...]]:
    return [error["loc"] for error in excinfo.value.errors()]


def nest(condition: dict[str, Any], levels: int) -> dict[str, Any]:
    for _ in range(levels):
        condition = {"type": "not", "condition": condition}
    return condition


# ------------------------------------------------------------------ parsing valid rule sets


def test_realistic_rule_set_parses_with_defaults_filled() -> None:
    rules = RuleSet.model_validate(realistic_rules())
    assert rules.side == "long"
    rsi = rules.entry.conditions[0].left  # type: ignore[union-attr]
    assert rsi == RsiRef(type="indicator", name="rsi", params=PeriodParams(period=14), timeframe=Timeframe.H1)
    near = rules.exit.conditions[1]  # type: ignore[union-attr]
    assert isinstance(near, StructureCondition)
    assert near.tolerance_pct == Decimal("0.5")


def test_rule_set_round_trips_through_json_exactly() -> None:
    rules = RuleSet.model_validate(realistic_rules())
    dumped = rules.model_dump(mode="json")
    assert dumped["take_profit"] == {"type": "risk_reward", "ratio": "2.5"}
    again = RuleSet.model_validate(dumped)
    assert again == rules
    assert isinstance(again.take_profit.ratio, Decimal)  # type: ignore[union-attr]
    assert RuleSet.model_validate_json(rules.model_dump_json()) == rules


@pytest.mark.parametrize("name", INDICATOR_NAMES)
def test_every_indicator_parses_with_its_default_params(name: str) -> None:
    entry = {**LEAF, "left": {"type": "indicator", "name": name}}
    rules = RuleSet.model_validate(rules_with_entry(entry))
    assert required_indicators(rules)[0].name == name


@pytest.mark.parametrize(
    ("indicator", "output"),
    [
        ("macd", "hist"),
        ("macd", "signal"),
        ("bollinger", "percent_b"),
        ("bollinger", "width"),
        ("stochastic", "d"),
    ],
)
def test_multi_output_indicators_accept_their_outputs(indicator: str, output: str) -> None:
    entry = {**LEAF, "left": {"type": "indicator", "name": indicator, "output": output}}
    RuleSet.model_validate(rules_with_entry(entry))


def test_every_stop_take_profit_and_sizing_kind_parses() -> None:
    stops = [
        {"type": "percent", "pct": "3"},
        {"type": "atr_multiple", "multiple": "1.5"},
        {"type": "fixed_price", "price": "25000"},
        {"type": "trailing_percent", "pct": "4", "activation_pct": "2"},
    ]
    targets = [
        {"type": "percent", "pct": "6"},
        {"type": "risk_reward", "ratio": "3"},
        {
            "type": "targets",
            "targets": [{"pct": "2", "size_fraction": "0.5"}, {"pct": "5", "size_fraction": "0.5"}],
        },
    ]
    sizings = [
        {"type": "fixed_quote", "amount": "50"},
        {"type": "percent_equity", "pct": "10"},
        {"type": "risk", "risk_pct": "0.5"},
    ]
    for stop in stops:
        for target in targets:
            for sizing in sizings:
                data = {
                    **rules_with_entry(LEAF),
                    "stop_loss": stop,
                    "take_profit": target,
                    "position_sizing": sizing,
                }
                assert RuleSet.model_validate(data).stop_loss.type == stop["type"]  # type: ignore[union-attr]


def test_exit_conditions_alone_are_a_way_out() -> None:
    data = {
        "timeframe": "15m",
        "entry": LEAF,
        "exit": LEAF,
        "position_sizing": {"type": "percent_equity", "pct": 5},
    }
    assert RuleSet.model_validate(data).stop_loss is None


# ------------------------------------------------------------------ rejecting nonsense


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (
            lambda r: r["entry"]["conditions"][0]["left"].update(name="supertrend"),
            ("entry", "all", "conditions", 0, "compare", "left", "indicator"),
        ),
        (
            lambda r: r["entry"]["conditions"][0]["left"].update(output="signal"),
            ("entry", "all", "conditions", 0, "compare", "left", "indicator", "rsi", "output"),
        ),
        (
            lambda r: r["entry"]["conditions"][0]["left"].update(params={"period": 0}),
            ("entry", "all", "conditions", 0, "compare", "left", "indicator", "rsi", "params", "period"),
        ),
        (
            lambda r: r["entry"]["conditions"][0]["left"].update(params={"period": 1001}),
            ("entry", "all", "conditions", 0, "compare", "left", "indicator", "rsi", "params", "period"),
        ),
        (
            lambda r: r["entry"]["conditions"][0]["left"].update(params={"period": 14, "length": 14}),
            ("entry", "all", "conditions", 0, "compare", "left", "indicator", "rsi", "params", "length"),
        ),
        (
            lambda r: r["entry"]["conditions"][0]["left"].update(offset=501),
            ("entry", "all", "conditions", 0, "compare", "left", "indicator", "rsi", "offset"),
        ),
        (
            lambda r: r["entry"]["conditions"][0]["left"].update(timeframe="2h"),
            ("entry", "all", "conditions", 0, "compare", "left", "indicator", "rsi", "timeframe"),
        ),
        (
            lambda r: r["entry"]["conditions"][0].update(op="approximately"),
            ("entry", "all", "conditions", 0, "compare", "op"),
        ),
        (
            lambda r: r["entry"]["conditions"][2].update(pattern="cup_and_handle"),
            ("entry", "all", "conditions", 2, "pattern", "pattern"),
        ),
        (lambda r: r["entry"].update(conditions=[]), ("entry", "all", "conditions")),
        (lambda r: r["exit"].update(type="xor"), ("exit",)),
        (lambda r: r["stop_loss"].update(multiple="-1"), ("stop_loss", "atr_multiple", "multiple")),
        (lambda r: r["position_sizing"].update(risk_pct="0"), ("position_sizing", "risk", "risk_pct")),
        (lambda r: r.update(timeframe="3m"), ("timeframe",)),
        (lambda r: r.update(side="sideways"), ("side",)),
        (lambda r: r.update(leverage=5), ("leverage",)),
        (lambda r: r["entry"].update(comment="extra"), ("entry", "all", "comment")),
    ],
)
def test_nonsense_is_rejected_at_the_offending_field(mutate: Any, loc: tuple[int | str, ...]) -> None:
    data = copy.deepcopy(realistic_rules())
    mutate(data)
    with pytest.raises(ValidationError) as excinfo:
        RuleSet.model_validate(data)
    assert locs(excinfo) == [loc]


def test_macd_fast_must_be_shorter_than_slow() -> None:
    with pytest.raises(ValidationError) as excinfo:
        MacdParams.model_validate({"fast": 26, "slow": 12})
    assert locs(excinfo) == [("slow",)]


def test_bollinger_std_must_be_positive() -> None:
    with pytest.raises(ValidationError) as excinfo:
        BollingerParams.model_validate({"std": 0})
    assert locs(excinfo) == [("std",)]


def test_comparing_two_constants_is_rejected() -> None:
    entry = {**LEAF, "left": {"type": "constant", "value": 2}}
    with pytest.raises(ValidationError, match="at least one non-constant operand"):
        RuleSet.model_validate(rules_with_entry(entry))


def test_tolerance_only_applies_to_proximity_structures() -> None:
    with pytest.raises(ValidationError, match="tolerance_pct applies only"):
        StructureCondition.model_validate({"type": "structure", "structure": "uptrend", "tolerance_pct": 1})


def test_nesting_at_the_limit_is_allowed_and_one_deeper_is_rejected_where_it_breaks() -> None:
    deepest_allowed = nest(LEAF, MAX_CONDITION_DEPTH - 1)
    rules = RuleSet.model_validate(rules_with_entry(deepest_allowed))
    assert condition_depth(rules.entry) == MAX_CONDITION_DEPTH

    with pytest.raises(ValidationError) as excinfo:
        RuleSet.model_validate(rules_with_entry(nest(LEAF, MAX_CONDITION_DEPTH)))
    assert locs(excinfo) == [("entry", "not")]
    assert "nest 9 levels deep" in str(excinfo.value)


def test_absurdly_deep_json_fails_validation_instead_of_crashing() -> None:
    with pytest.raises(ValidationError):
        RuleSet.model_validate(rules_with_entry(nest(LEAF, 5000)))


def test_too_many_nodes_is_rejected() -> None:
    wide = {"type": "any", "conditions": [{"type": "all", "conditions": [LEAF] * 49} for _ in range(5)]}
    with pytest.raises(ValidationError, match="has 251 nodes; at most 200"):
        RuleSet.model_validate(rules_with_entry(wide))
    fits = {"type": "any", "conditions": [{"type": "all", "conditions": [LEAF] * 49} for _ in range(3)]}
    assert condition_size(RuleSet.model_validate(rules_with_entry(fits)).entry) == 151


def test_partial_targets_may_not_close_more_than_the_position() -> None:
    data = realistic_rules()
    data["take_profit"] = {
        "type": "targets",
        "targets": [{"pct": "2", "size_fraction": "0.6"}, {"pct": "4", "size_fraction": "0.5"}],
    }
    with pytest.raises(ValidationError) as excinfo:
        RuleSet.model_validate(data)
    assert locs(excinfo) == [("take_profit", "targets", "targets")]
    assert "sum to 1.1" in str(excinfo.value)


def test_partial_targets_must_increase() -> None:
    data = realistic_rules()
    data["take_profit"] = {
        "type": "targets",
        "targets": [{"pct": "4", "size_fraction": "0.5"}, {"pct": "2", "size_fraction": "0.5"}],
    }
    with pytest.raises(ValidationError, match="strictly increasing"):
        RuleSet.model_validate(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stop_loss": None}, "risk_reward needs a stop_loss"),
        ({"stop_loss": None, "take_profit": None}, "needs a way out"),
        ({"stop_loss": None, "take_profit": {"type": "percent", "pct": 5}}, "risk needs a stop_loss"),
    ],
)
def test_exits_and_sizing_must_be_coherent(change: dict[str, Any], message: str) -> None:
    data = {**realistic_rules(), **change}
    data.pop("exit")
    with pytest.raises(ValidationError, match=message):
        RuleSet.model_validate(data)


def test_history_within_the_lookback_limit_is_accepted() -> None:
    slow_ema = {
        **LEAF,
        "op": "crosses_above",
        "left": {"type": "indicator", "name": "ema", "params": {"period": 1000}, "offset": 500},
    }
    # EMA(1000): first value at bar 1000, + 3 x 1000 settling; + 500 offset + 1 previous bar for the cross
    assert max_lookback(RuleSet.model_validate(rules_with_entry(slow_ema))) == 4501


def test_history_beyond_the_lookback_limit_is_rejected() -> None:
    huge_adx = {**LEAF, "left": {"type": "indicator", "name": "adx", "params": {"period": 900}}}
    # ADX(900): first value at bar 2 x 900, + 3 x 900 settling for each of its two smoothings
    with pytest.raises(ValidationError, match="rules need 7200 bars of 1h history; at most 5000"):
        RuleSet.model_validate(rules_with_entry(huge_adx))


# ------------------------------------------------------------------ what the rules need


def test_required_indicators_are_distinct_and_resolve_the_primary_timeframe() -> None:
    rules = RuleSet.model_validate(realistic_rules())
    assert required_indicators(rules) == [
        IndicatorKey(Timeframe.H1, "rsi", PeriodParams(period=14)),
        IndicatorKey(Timeframe.H4, "ema", SourcedPeriodParams(period=200)),
        IndicatorKey(Timeframe.H1, "atr", PeriodParams(period=14)),
    ]


def test_outputs_and_offsets_share_one_indicator_series() -> None:
    entry = {
        "type": "all",
        "conditions": [
            {
                "type": "compare",
                "left": {"type": "indicator", "name": "macd", "output": "line"},
                "op": "crosses_above",
                "right": {"type": "indicator", "name": "macd", "output": "signal"},
            },
            {
                "type": "compare",
                "left": {"type": "indicator", "name": "macd", "output": "hist"},
                "op": "gt",
                "right": {"type": "indicator", "name": "macd", "output": "hist", "offset": 1},
            },
        ],
    }
    rules = RuleSet.model_validate(rules_with_entry(entry))
    assert required_indicators(rules) == [IndicatorKey(Timeframe.H1, "macd", MacdParams())]


def test_lookback_counts_warmup_offsets_crosses_patterns_and_structure() -> None:
    rules = RuleSet.model_validate(realistic_rules())
    # 1h: RSI(14) 15 + 3*14 = 57, +1 for crosses_above = 58; ATR(14) = 57; engulfing 2 + 10 context = 12;
    # near_resistance lookback 100 -> 100. 4h: EMA(200) 200 + 3*200 = 800.
    assert lookback_by_timeframe(rules) == {Timeframe.H1: 100, Timeframe.H4: 800}
    assert max_lookback(rules) == 800


def test_atr_stop_reads_the_atr_it_is_built_on() -> None:
    stop = AtrStop(type="atr_multiple", multiple=Decimal(2), period=21, timeframe=Timeframe.H4)
    assert stop.atr().params == PeriodParams(period=21)
    assert stop.atr().timeframe is Timeframe.H4


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e13"])
def test_constants_must_be_finite_and_bounded(value: str) -> None:
    entry = {**LEAF, "right": {"type": "constant", "value": value}}
    with pytest.raises(ValidationError) as excinfo:
        RuleSet.model_validate(rules_with_entry(entry))
    assert locs(excinfo) == [("entry", "compare", "right", "constant", "value")]
