"""Seeded random rule strategies: every indicator, crosses, offsets, candle patterns, market
structure, a higher timeframe, nested all/any/not, and every kind of stop, take profit and
sizing, long and short."""

from __future__ import annotations

import random
from typing import Any

from tekoa.strategies.rules import CandlePattern, MarketStructure

PRICE_LIKE: list[tuple[str, dict[str, Any], str]] = [
    ("sma", {"period": (2, 30)}, "value"),
    ("ema", {"period": (2, 30)}, "value"),
    ("wma", {"period": (2, 30)}, "value"),
    ("bollinger", {"period": (5, 30)}, "upper"),
    ("bollinger", {"period": (5, 30)}, "middle"),
    ("bollinger", {"period": (5, 30)}, "lower"),
    ("highest", {"period": (2, 30), "source": "high"}, "value"),
    ("lowest", {"period": (2, 30), "source": "low"}, "value"),
    ("vwap", {"period": (2, 30)}, "value"),
]
OSCILLATORS: list[tuple[str, dict[str, Any], str, tuple[float, float]]] = [
    ("rsi", {"period": (2, 20)}, "value", (25, 75)),
    ("stochastic", {"k_period": (5, 14)}, "k", (20, 80)),
    ("stochastic", {"k_period": (5, 14)}, "d", (20, 80)),
    ("williams_r", {"period": (5, 20)}, "value", (-80, -20)),
    ("cci", {"period": (5, 20)}, "value", (-100, 100)),
    ("mfi", {"period": (5, 20)}, "value", (20, 80)),
    ("roc", {"period": (1, 10)}, "value", (-2, 2)),
    ("adx", {"period": (5, 14)}, "value", (15, 40)),
    ("macd", {}, "hist", (-0.3, 0.3)),
    ("bollinger", {"period": (5, 30)}, "percent_b", (0, 1)),
]
PRICE_FIELDS = ["close", "open", "high", "low", "hl2", "hlc3", "ohlc4"]
OPS = ["gt", "gte", "lt", "lte", "crosses_above", "crosses_below"]
PATTERNS = [p.value for p in CandlePattern]
STRUCTURES = [s.value for s in MarketStructure]


def _params(rng: random.Random, spec: dict[str, Any]) -> dict[str, Any]:
    return {k: rng.randint(*v) if isinstance(v, tuple) else v for k, v in spec.items()}


def _with_where(rng: random.Random, operand: dict[str, Any], higher: str | None) -> dict[str, Any]:
    if higher is not None and rng.random() < 0.15:
        operand["timeframe"] = higher
    if rng.random() < 0.15:
        operand["offset"] = rng.randint(1, 3)
    return operand


def _price_operand(rng: random.Random, higher: str | None) -> dict[str, Any]:
    if rng.random() < 0.3:
        return _with_where(rng, {"type": "price", "field": rng.choice(PRICE_FIELDS)}, higher)
    name, spec, output = rng.choice(PRICE_LIKE)
    operand = {"type": "indicator", "name": name, "params": _params(rng, spec), "output": output}
    return _with_where(rng, operand, higher)


def comparison(rng: random.Random, higher: str | None) -> dict[str, Any]:
    """One random comparison: two price-like series, or an oscillator against a level."""
    op = rng.choice(OPS)
    if rng.random() < 0.5:
        return {
            "type": "compare",
            "left": _price_operand(rng, higher),
            "op": op,
            "right": _price_operand(rng, higher),
        }
    name, spec, output, (low, high) = rng.choice(OSCILLATORS)
    left = _with_where(
        rng, {"type": "indicator", "name": name, "params": _params(rng, spec), "output": output}, higher
    )
    level = round(rng.uniform(low, high), 2)
    return {"type": "compare", "left": left, "op": op, "right": {"type": "constant", "value": str(level)}}


def leaf(rng: random.Random, higher: str | None) -> dict[str, Any]:
    """A comparison, mostly; sometimes a candle pattern or a market-structure state."""
    roll = rng.random()
    if roll < 0.12:
        return _with_where(rng, {"type": "pattern", "pattern": rng.choice(PATTERNS)}, higher)
    if roll < 0.24:
        node = {"type": "structure", "structure": rng.choice(STRUCTURES), "lookback": rng.randint(5, 60)}
        if higher is not None and rng.random() < 0.15:
            node["timeframe"] = higher
        return node
    return comparison(rng, higher)


def condition(rng: random.Random, higher: str | None, depth: int = 0) -> dict[str, Any]:
    """A random tree of leaves under all/any/not, at most three levels deep."""
    roll = rng.random()
    if depth >= 2 or roll < 0.4:
        return leaf(rng, higher)
    if roll < 0.5:
        return {"type": "not", "condition": condition(rng, higher, depth + 1)}
    kind = "all" if roll < 0.8 else "any"
    return {"type": kind, "conditions": [condition(rng, higher, depth + 1) for _ in range(rng.randint(2, 3))]}


def rules(seed: int, timeframe: str = "1h", higher: str | None = "4h") -> dict[str, Any]:
    """A random, valid rule strategy definition."""
    rng = random.Random(seed)
    side = "long" if rng.random() < 0.7 else "short"
    stop: dict[str, Any] | None = rng.choice(
        [
            None,
            {"type": "percent", "pct": str(round(rng.uniform(0.5, 5), 2))},
            {
                "type": "atr_multiple",
                "multiple": str(round(rng.uniform(0.5, 3), 2)),
                "period": rng.randint(3, 14),
            },
            {"type": "trailing_percent", "pct": str(round(rng.uniform(0.5, 4), 2))},
            {
                "type": "trailing_percent",
                "pct": str(round(rng.uniform(0.5, 4), 2)),
                "activation_pct": str(round(rng.uniform(0.2, 2), 2)),
            },
            {"type": "fixed_price", "price": "40" if side == "long" else "300"},
        ]
    )
    takes: list[dict[str, Any] | None] = [
        None,
        {"type": "percent", "pct": str(round(rng.uniform(0.5, 8), 2))},
    ]
    takes.append(
        {
            "type": "targets",
            "targets": [
                {"pct": "1", "size_fraction": "0.3"},
                {"pct": "2.5", "size_fraction": "0.3"},
                {"pct": "4", "size_fraction": "0.4"},
            ],
        }
    )
    if stop is not None:
        takes.append({"type": "risk_reward", "ratio": str(round(rng.uniform(0.5, 3), 2))})
    take = rng.choice(takes)
    sizings: list[dict[str, Any]] = [
        {"type": "fixed_quote", "amount": str(rng.randint(100, 5000))},
        {"type": "percent_equity", "pct": str(rng.choice([10, 50, 100]))},
    ]
    if stop is not None:
        sizings.append({"type": "risk", "risk_pct": str(round(rng.uniform(0.5, 3), 2))})
    definition: dict[str, Any] = {
        "timeframe": timeframe,
        "side": side,
        "entry": condition(rng, higher),
        "position_sizing": rng.choice(sizings),
    }
    if rng.random() < 0.7 or (stop is None and take is None):
        definition["exit"] = condition(rng, higher)
    if stop is not None:
        definition["stop_loss"] = stop
    if take is not None:
        definition["take_profit"] = take
    return {"kind": "rules", "rules": definition}
