"""tekoa.indicators: the indicator catalogue and its numba kernels.

`tekoa.indicators.catalogue` is pure Python (parameters, outputs, inputs, warm-up) and is what
the rule language reads. The kernels (`tekoa.indicators.kernels`) and the dispatcher
(`tekoa.indicators.compute`) need numpy and numba, so this package loads them only when one of
their names is first used: importing the package or the catalogue keeps the API's cold start
free of the numeric stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tekoa.indicators.compute import compute, price_column
    from tekoa.indicators.kernels import (
        Bollinger,
        Macd,
        Stochastic,
        adx,
        atr,
        bollinger,
        cci,
        ema,
        highest,
        lowest,
        macd,
        mfi,
        obv,
        roc,
        rsi,
        sma,
        stochastic,
        volume_sma,
        vwap,
        williams_r,
        wma,
    )

_COMPUTE = frozenset({"compute", "price_column"})
__all__ = [
    "Bollinger",
    "Macd",
    "Stochastic",
    "adx",
    "atr",
    "bollinger",
    "cci",
    "compute",
    "ema",
    "highest",
    "lowest",
    "macd",
    "mfi",
    "obv",
    "price_column",
    "roc",
    "rsi",
    "sma",
    "stochastic",
    "volume_sma",
    "vwap",
    "williams_r",
    "wma",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = "tekoa.indicators.compute" if name in _COMPUTE else "tekoa.indicators.kernels"
    return getattr(importlib.import_module(module), name)
