"""tekoa.strategies."""
