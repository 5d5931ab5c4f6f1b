"""tekoa.risk."""
