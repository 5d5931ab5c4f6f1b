"""tekoa.db."""
