"""Realistic strategy inputs shared by the strategy tests, as an API client would send them."""

from typing import Any

QUOTE_100 = {"amount": "100", "unit": "quote"}

SCALPER: dict[str, Any] = {
    "timeframe": "1m",
    "fast_ema_period": 9,
    "slow_ema_period": 21,
    "rsi_period": 14,
    "rsi_oversold": 30,
    "rsi_overbought": 70,
    "take_profit_pct": "0.6",
    "stop_loss_pct": "0.3",
    "max_trades_per_hour": 12,
    "order_size": QUOTE_100,
}
GRID: dict[str, Any] = {
    "lower_price": "25000",
    "upper_price": "35000",
    "levels": 21,
    "spacing": "geometric",
    "order_size": {"amount": "0.001", "unit": "base"},
    "stop_loss_price": "23000",
    "take_profit_price": "38000",
}
DCA: dict[str, Any] = {
    "base_order_size": "100",
    "safety_order_size": "50",
    "max_safety_orders": 4,
    "price_deviation_pct": "2",
    "step_scale": "1.5",
    "volume_scale": "2",
    "take_profit_pct": "1.5",
    "stop_loss_pct": "20",
}
DIP: dict[str, Any] = {
    "drop_pct": "8",
    "lookback_bars": 72,
    "confirmation": {"type": "rsi_below", "period": 14, "threshold": 35},
    "trailing_buy_pct": "1",
    "take_profit_pct": "5",
    "stop_loss_pct": "6",
    "order_size": QUOTE_100,
}
MOMENTUM: dict[str, Any] = {
    "timeframe": "4h",
    "mode": {"type": "breakout", "lookback": 55},
    "volume_confirmation": {"period": 20, "multiplier": "1.5"},
    "trailing_stop_pct": "5",
    "order_size": QUOTE_100,
}


RSI_CROSS: dict[str, Any] = {
    "type": "compare",
    "left": {"type": "indicator", "name": "rsi", "params": {"period": 14}, "timeframe": "1h"},
    "op": "crosses_above",
    "right": {"type": "constant", "value": "30"},
}
CLOSE_ABOVE_EMA200_4H: dict[str, Any] = {
    "type": "compare",
    "left": {"type": "price", "field": "close", "timeframe": "4h"},
    "op": "gt",
    "right": {"type": "indicator", "name": "ema", "params": {"period": 200}, "timeframe": "4h"},
}
ENGULFING: dict[str, Any] = {"type": "pattern", "pattern": "bullish_engulfing"}
LEAF: dict[str, Any] = {
    "type": "compare",
    "left": {"type": "price", "field": "close"},
    "op": "gt",
    "right": {"type": "constant", "value": 1},
}


def realistic_rules() -> dict[str, Any]:
    """RSI(14) on 1h crosses above 30 AND close > EMA(200) on 4h AND bullish engulfing,
    ATR stop, 2R target, 1 % risk sizing."""
    return {
        "timeframe": "1h",
        "entry": {"type": "all", "conditions": [RSI_CROSS, CLOSE_ABOVE_EMA200_4H, ENGULFING]},
        "exit": {
            "type": "any",
            "conditions": [
                {
                    "type": "compare",
                    "left": {"type": "indicator", "name": "rsi"},
                    "op": "gt",
                    "right": {"type": "constant", "value": 70},
                },
                {"type": "structure", "structure": "near_resistance", "lookback": 100},
            ],
        },
        "stop_loss": {"type": "atr_multiple", "multiple": "2", "period": 14},
        "take_profit": {"type": "risk_reward", "ratio": "2.5"},
        "position_sizing": {"type": "risk", "risk_pct": "1"},
    }
