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

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from tekoa.domain.timeframes import Timeframe
from tekoa.engine.market import F64, Bools, MarketData
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
    """The condition over every bar of the primary frame, memoised per (timeframe, tree object).

    Keyed by identity (the value holds the tree, so its id cannot be reused while memoised):
    hashing or serialising a tree on every call cost more than evaluating it. Bots that run the
    same definition share one parsed tree (the evaluator interns definitions, the built-in bots
    build their conditions once per parameter set), so they share the arrays too.
    """
    _, value = data.memo(
        ("truth", primary, id(condition)), lambda: (condition, _evaluate(data, primary, condition))
    )
    return value


def _evaluate(data: MarketData, primary: Timeframe, condition: Condition) -> Truth:
    if isinstance(condition, AllOf | AnyOf):
        members = [truth(data, primary, c) for c in condition.conditions]
        true, false = members[0].true.copy(), members[0].false.copy()
        for member in members[1:]:
            if isinstance(condition, AllOf):
                true &= member.true
                false |= member.false
            else:
                true |= member.true
                false &= member.false
        return Truth(true, false)
    if isinstance(condition, NotOf):
        inner = truth(data, primary, condition.condition)
        return Truth(inner.false, inner.true)
    if isinstance(condition, Comparison):
        return _compare(data, primary, condition)
    if isinstance(condition, PatternCondition):
        timeframe = condition.timeframe or primary
        from tekoa.patterns.candles import candle_pattern

        mask = data.memo(
            ("pattern", timeframe, condition.pattern),
            lambda: candle_pattern(condition.pattern, data.frame(timeframe)),
        )
        value, defined = data.aligned_mask(primary, timeframe, mask, condition.offset)
        return Truth(value & defined, ~value & defined)
    if isinstance(condition, StructureCondition):
        timeframe = condition.timeframe or primary
        from tekoa.patterns.structure import structure_condition

        mask = data.memo(
            ("structure", timeframe, condition.structure, condition.lookback, condition.tolerance_pct),
            lambda: structure_condition(condition, data.frame(timeframe)),
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


_OP_CODES = {
    CompareOp.GT: 0,
    CompareOp.GTE: 1,
    CompareOp.LT: 2,
    CompareOp.LTE: 3,
    CompareOp.EQ: 4,
    CompareOp.CROSSES_ABOVE: 5,
    CompareOp.CROSSES_BELOW: 6,
}


@njit(cache=True)
def _compare_kernel(left: F64, right: F64, op: int, true: Bools, false: Bools) -> None:
    """One pass of `left op right` (a length-1 side is a constant) into Kleene (true, false).

    A comparison with NaN is false, so a bar with an unknown operand is neither true nor false;
    a cross is known only where this bar and the previous are."""
    scalar_left = left.shape[0] == 1
    scalar_right = right.shape[0] == 1
    known_before = False
    was_on_other_side = False
    for i in range(true.shape[0]):
        a = left[0] if scalar_left else left[i]
        b = right[0] if scalar_right else right[i]
        known = not (math.isnan(a) or math.isnan(b))
        if op == 0:
            holds = a > b
        elif op == 1:
            holds = a >= b
        elif op == 2:
            holds = a < b
        elif op == 3:
            holds = a <= b
        elif op == 4:
            holds = a == b
        else:
            now = a > b if op == 5 else a < b
            holds = now and was_on_other_side
            was_on_other_side = a <= b if op == 5 else a >= b
            known, known_before = known and known_before, known
        true[i] = holds
        false[i] = known and not holds


def _compare(data: MarketData, primary: Timeframe, node: Comparison) -> Truth:
    size = len(data.frame(primary))
    sides = [
        np.full(1, series) if isinstance(series, float) else series
        for series in (operand_series(data, primary, node.left), operand_series(data, primary, node.right))
    ]
    true = np.empty(size, dtype=np.bool_)
    false = np.empty(size, dtype=np.bool_)
    _compare_kernel(sides[0], sides[1], _OP_CODES[node.op], true, false)
    return Truth(true, false)


def members(condition: Condition) -> tuple[Condition, ...]:
    """What a confluence score counts: the members of a top-level `all`/`any`, else the node."""
    if isinstance(condition, AllOf | AnyOf):
        return tuple(condition.conditions)
    return (condition,)


def describe(condition: Condition) -> str:
    """A short human label: `rsi(period=14) crosses_above 30`, `pattern hammer [1h]`."""
    if isinstance(condition, Comparison):
        return (
            f"{_describe_operand(condition.left)} {condition.op.value} {_describe_operand(condition.right)}"
        )
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


def matched_at(
    data: MarketData, primary: Timeframe, condition: Condition, bar: int
) -> tuple[tuple[str, ...], float]:
    """The labels of the members true at `bar`, and the confluence score (share of members true)."""
    parts = members(condition)
    hits = tuple(_described(data, c) for c in parts if truth(data, primary, c).true[bar])
    return hits, len(hits) / len(parts)


def _described(data: MarketData, condition: Condition) -> str:
    """`describe` once per condition object for the data's life (every bot sharing a strategy
    asks on every decision); keyed by identity and holding the condition, as the brains are."""
    _, label = data.memo(("describe", id(condition)), lambda: (condition, describe(condition)))
    return label
