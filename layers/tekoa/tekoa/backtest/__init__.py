"""tekoa.backtest."""
