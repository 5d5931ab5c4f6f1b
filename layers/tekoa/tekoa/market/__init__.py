"""tekoa.market."""
