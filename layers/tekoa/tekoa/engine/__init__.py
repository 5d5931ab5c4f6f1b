"""tekoa.engine: decide(strategy, market, state) -> Decision, pure."""
