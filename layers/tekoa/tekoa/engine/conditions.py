"""Condition trees of the rule language compiled into vectorised truth over a primary frame.

Every node becomes two boolean arrays over the primary timeframe's bars, in three-valued
(Kleene) logic: `true` where the condition holds, `false` where it certainly does not, neither
where it cannot be known yet (an indicator still warming up, a higher timeframe with no closed
candle, a cross on the first bar). Groups combine them: `all` is true where every member is
true and false where any is false; `any` the reverse; `not` swaps the two. A strategy acts
only where its tree is *true*, so `not (rsi > 70)` does not fire while RSI is warming up.

Comparisons are float64 (see docs/DECISIONS.md): a constant threshold — Decimal in the rule —
is rounded once to the nearest float64 (`float(Decimal)`), then compared with IEEE semantics,
so `close gt 100.1` is false on a close printed as 100.1 and `gte` is true there.
`crosses_above` holds on bar i when left > right on i and left <= right on bar i-1 (both bars
defined), in the primary timeframe after alignment: a higher-timeframe cross fires once, on
the first primary bar after the higher candle that crossed closes. `crosses_below` mirrors it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tekoa.domain.timeframes import Timeframe
from tekoa.engine.market import Bools, F64, MarketData
from tekoa.strategies.rules import (
    AllOf,
    AnyOf,
    CompareOp,
    Comparison,
    Condition,
    ConstantRef,
    IndicatorKey,
    NotOf,
    Operand,
    PatternCondition,
    PriceRef,
    StructureCondition,
)


@dataclass(frozen=True, slots=True)
class Truth:
    """Kleene truth of a condition per primary bar: `true`, `false`, or neither (unknown)."""

    true: Bools
    false: Bools

    @property
    def known(self) -> Bools:
        """Where the value is known."""
        return self.true | self.false


def truth(data: MarketData, primary: Timeframe, condition: Condition) -> Truth:
    """The condition over every bar of the primary frame, memoised per (timeframe, tree)."""
    key = ("truth", primary, type(condition).__name__, condition.model_dump_json())
    return data.memo(key, lambda: _evaluate(data, primary, condition))


def _evaluate(data: MarketData, primary: Timeframe, condition: Condition) -> Truth:
    if isinstance(condition, AllOf | AnyOf):
        members = [truth(data, primary, c) for c in condition.conditions]
        trues = np.array([m.true for m in members])
        falses = np.array([m.false for m in members])
        if isinstance(condition, AllOf):
            return Truth(trues.all(axis=0), falses.any(axis=0))
        return Truth(trues.any(axis=0), falses.all(axis=0))
    if isinstance(condition, NotOf):
        inner = truth(data, primary, condition.condition)
        return Truth(inner.false, inner.true)
    if isinstance(condition, Comparison):
        return _compare(data, primary, condition)
    if isinstance(condition, PatternCondition):
        timeframe = condition.timeframe or primary
        from tekoa.patterns import candle_pattern

        mask = data.memo(
            ("pattern", timeframe, condition.pattern),
            lambda: candle_pattern(data.frame(timeframe), condition.pattern),
        )
        value, defined = data.aligned_mask(primary, timeframe, mask, condition.offset)
        return Truth(value & defined, ~value & defined)
    if isinstance(condition, StructureCondition):
        timeframe = condition.timeframe or primary
        from tekoa.patterns import structure_state

        mask = data.memo(
            ("structure", timeframe, condition.structure, condition.lookback, condition.tolerance_pct),
            lambda: structure_state(
                data.frame(timeframe), condition.structure, condition.lookback, condition.tolerance_pct
            ),
        )
        value, defined = data.aligned_mask(primary, timeframe, mask)
        return Truth(value & defined, ~value & defined)
    raise TypeError(f"unknown condition {type(condition).__name__}")  # pragma: no cover


def operand_series(data: MarketData, primary: Timeframe, operand: Operand) -> F64 | float:
    """An operand's value at every primary bar (NaN where unknown), or a constant as float64."""
    if isinstance(operand, ConstantRef):
        return float(operand.value)
    timeframe = operand.timeframe or primary
    if isinstance(operand, PriceRef):
        series = data.price(timeframe, operand.field)
    else:
        key = IndicatorKey(timeframe, operand.name, operand.params)
        series = data.indicator(key)[operand.output]
    return data.aligned(primary, timeframe, series, operand.offset)


def _previous(series: F64 | float) -> F64 | float:
    if isinstance(series, float):
        return series
    shifted = np.empty_like(series)
    shifted[0] = np.nan
    shifted[1:] = series[:-1]
    return shifted


def _defined(a: F64 | float, b: F64 | float, size: int) -> Bools:
    return np.broadcast_to(~np.isnan(a) & ~np.isnan(b), (size,))


_OPS: dict[CompareOp, Any] = {
    CompareOp.GT: np.greater,
    CompareOp.GTE: np.greater_equal,
    CompareOp.LT: np.less,
    CompareOp.LTE: np.less_equal,
    CompareOp.EQ: np.equal,
}


def _compare(data: MarketData, primary: Timeframe, node: Comparison) -> Truth:
    size = len(data.frame(primary))
    left = operand_series(data, primary, node.left)
    right = operand_series(data, primary, node.right)
    defined = _defined(left, right, size)
    with np.errstate(invalid="ignore"):
        if not node.op.is_cross:
            holds = np.broadcast_to(_OPS[node.op](left, right), (size,))
            return Truth(defined & holds, defined & ~holds)
        before_left, before_right = _previous(left), _previous(right)
        known = defined & _defined(before_left, before_right, size)
        if node.op is CompareOp.CROSSES_ABOVE:
            holds = np.broadcast_to((left > right) & (before_left <= before_right), (size,))
        else:
            holds = np.broadcast_to((left < right) & (before_left >= before_right), (size,))
    return Truth(known & holds, known & ~holds)


def members(condition: Condition) -> tuple[Condition, ...]:
    """What a confluence score counts: the members of a top-level `all`/`any`, else the node."""
    if isinstance(condition, AllOf | AnyOf):
        return tuple(condition.conditions)
    return (condition,)


def describe(condition: Condition) -> str:
    """A short human label: `rsi(period=14) crosses_above 30`, `pattern hammer [1h]`."""
    if isinstance(condition, Comparison):
        return f"{_describe_operand(condition.left)} {condition.op.value} {_describe_operand(condition.right)}"
    if isinstance(condition, PatternCondition):
        return f"pattern {condition.pattern.value}{_where(condition.timeframe, condition.offset)}"
    if isinstance(condition, StructureCondition):
        return f"structure {condition.structure.value}{_where(condition.timeframe, 0)}"
    if isinstance(condition, NotOf):
        return f"not ({describe(condition.condition)})"
    joiner = " and " if isinstance(condition, AllOf) else " or "
    return "(" + joiner.join(describe(c) for c in condition.conditions) + ")"


def _where(timeframe: Timeframe | None, offset: int) -> str:
    parts = ([timeframe.value] if timeframe else []) + ([f"-{offset}"] if offset else [])
    return f" [{' '.join(parts)}]" if parts else ""


def _describe_operand(operand: Operand) -> str:
    if isinstance(operand, ConstantRef):
        return str(operand.value)
    if isinstance(operand, PriceRef):
        return operand.field.value + _where(operand.timeframe, operand.offset)
    params = ", ".join(f"{k}={v}" for k, v in operand.params.model_dump(mode="json").items())
    output = "" if operand.output in ("value",) else f".{operand.output}"
    return f"{operand.name}({params}){output}{_where(operand.timeframe, operand.offset)}"


def matched_at(data: MarketData, primary: Timeframe, condition: Condition, bar: int) -> tuple[tuple[str, ...], float]:
    """The labels of the members true at `bar`, and the confluence score (share of members true)."""
    parts = members(condition)
    hits = tuple(describe(c) for c in parts if truth(data, primary, c).true[bar])
    return hits, len(hits) / len(parts)

