"""tekoa.risk: pre-trade checks, the circuit breaker and the limits they read — pure.

`checks.check_intents` judges a decision's intents (approved, resized, rejected, with the
reason); `breaker.assess` trips a user to exits-only on the daily loss or the drawdown from the
peak; `limits` holds the user's limits and the tracking the breaker keeps. The state lives in
the database (`tekoa.db.risk`); the evaluator reads it every tick and the executor checks the
trading states again when an order executes. Unreadable state rejects (fail closed).
No I/O and no numpy here: the API imports the models.
"""
