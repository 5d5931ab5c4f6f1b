"""tekoa.aws."""
