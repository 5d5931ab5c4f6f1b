"""tekoa.patterns."""
