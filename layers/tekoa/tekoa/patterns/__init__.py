"""tekoa.patterns: candlestick patterns (`candles`) and market structure (`structure`): swings,
support and resistance, and the rule language's structure states. Causal, vectorised over a
whole series; loaded lazily so importing the package does not load numpy."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tekoa.patterns.candles import candle_pattern, candle_patterns
    from tekoa.patterns.structure import (
        Levels,
        Swings,
        structure_condition,
        structure_state,
        support_resistance,
        swings,
    )

_CANDLES = frozenset({"candle_pattern", "candle_patterns"})
__all__ = [
    "Levels",
    "Swings",
    "candle_pattern",
    "candle_patterns",
    "structure_condition",
    "structure_state",
    "support_resistance",
    "swings",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = "tekoa.patterns.candles" if name in _CANDLES else "tekoa.patterns.structure"
    return getattr(importlib.import_module(module), name)
