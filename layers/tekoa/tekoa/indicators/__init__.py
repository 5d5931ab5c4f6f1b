"""tekoa.indicators."""
