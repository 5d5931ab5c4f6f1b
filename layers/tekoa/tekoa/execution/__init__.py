"""tekoa.execution."""
