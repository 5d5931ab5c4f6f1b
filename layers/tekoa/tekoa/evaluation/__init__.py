"""tekoa.evaluation: the scheduled evaluator — running bots decide on every candle close.

`tick.Evaluator` runs one invocation's work; `invocation.parse` turns the Lambda event (a
schedule, a `candle.closed` event, or a shard of a fanned-out schedule) into what is due.
"""
