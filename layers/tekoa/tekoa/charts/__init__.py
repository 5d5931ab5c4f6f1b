"""tekoa.charts."""
