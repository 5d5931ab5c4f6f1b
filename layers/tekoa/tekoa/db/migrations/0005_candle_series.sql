-- Candles keyed by a small series id instead of (exchange, symbol, timeframe) text.
--
-- Bulk writes are bound by primary-key insertion, and a key of three text columns and a
-- bigint costs twice what (integer, bigint) does (measured with binary COPY of 1M candles:
-- 0.33M rows/s against 0.51M rows/s). A series is created once and never deleted or renamed,
-- so its id is stable. There is no foreign key from candles: its per-row check more than
-- halves the bulk rate (0.21M against 0.5M rows/s), and every writer creates the series in
-- the transaction that writes its candles (`tekoa.db.candles.ensure_series`).
--
-- Existing candles move over unchanged.

CREATE TABLE candle_series (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exchange   text COLLATE "C" NOT NULL,
    symbol     text COLLATE "C" NOT NULL,
    timeframe  text COLLATE "C" NOT NULL CHECK (timeframe IN ('1m', '5m', '15m', '1h', '4h', '1d')),
    UNIQUE (exchange, symbol, timeframe)
);

INSERT INTO candle_series (exchange, symbol, timeframe)
SELECT DISTINCT exchange, symbol, timeframe FROM candles ORDER BY 1, 2, 3;

ALTER TABLE candles RENAME TO candles_by_text_key;
ALTER TABLE candles_by_text_key RENAME CONSTRAINT candles_pkey TO candles_by_text_key_pkey;
DROP INDEX candles_unannounced;

-- Closed candles only: the forming candle lives in the market stream's memory.
CREATE TABLE candles (
    series_id  integer NOT NULL,
    open_time  bigint  NOT NULL,
    open       numeric NOT NULL,
    high       numeric NOT NULL,
    low        numeric NOT NULL,
    close      numeric NOT NULL,
    volume     numeric NOT NULL CHECK (volume >= 0),
    -- Trades that built the candle; NULL when it came from REST history, which does not say.
    trades     integer CHECK (trades >= 0),
    -- false until the candle.closed event for it was published (a transactional outbox:
    -- a crash between the write and the publish is repaired on restart).
    announced  boolean NOT NULL DEFAULT true,
    PRIMARY KEY (series_id, open_time),
    CHECK (open_time % 60000 = 0)  -- every timeframe is whole minutes
);
CREATE INDEX candles_unannounced ON candles (open_time) WHERE NOT announced;

INSERT INTO candles (series_id, open_time, open, high, low, close, volume, trades, announced)
SELECT s.id, c.open_time, c.open, c.high, c.low, c.close, c.volume, c.trades, c.announced
FROM candles_by_text_key c
JOIN candle_series s ON (s.exchange, s.symbol, s.timeframe) = (c.exchange, c.symbol, c.timeframe)
ORDER BY s.id, c.open_time;

DROP TABLE candles_by_text_key;

GRANT SELECT, INSERT, UPDATE, DELETE ON candles, candle_series TO tekoa_app, tekoa_service;
