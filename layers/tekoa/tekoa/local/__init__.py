"""tekoa.local."""
