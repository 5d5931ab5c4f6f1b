"""Live market data from a real exchange through ccxt: trades over WebSocket, candles over REST.

`source.CcxtSource` implements `MarketSource` at the edge of the system; nothing inward imports
ccxt. It is built from: `client` (the exchange's ccxt clients, built by `tekoa.exchanges`, closing,
REST retries with `Backoff`), `trades` (one watcher per symbol, staleness, reconnects and the
events they raise), `dedup` (dropping trades a reconnect replays) and `history` (candles from
REST, paged).
"""
