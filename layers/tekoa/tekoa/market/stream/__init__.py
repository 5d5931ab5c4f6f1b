"""The market-stream service: trades → candles → PostgreSQL → `candle.closed` on EventBridge.

`service` runs it (the Fargate task's process, and a part of `tekoa up`); `outbox` writes and
announces closed candles; `repair` replaces what the stream may have missed from the source's
REST history and applies retention; `health` serves GET /health; `config` holds its settings.
"""
