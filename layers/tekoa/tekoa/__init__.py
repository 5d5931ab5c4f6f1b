"""Tekoa: the shared package every function and the market-stream container import."""
