-- Market data: candles, how far each series has been checked against the exchange, and
-- whether each market's data can be trusted right now.
--
-- Market data is shared by every user: these are NOT tenant tables (no user_id, no row level
-- security). Neither application role owns them, so they are granted explicitly.
--
-- Time is `bigint` milliseconds since the UTC epoch, exactly as in the domain model and at the
-- wire: no conversion on the hot path, binary COPY writes it straight from int64 arrays, and
-- alignment to the timeframe is a plain modulo. Read it in psql with
-- `to_timestamp(open_time / 1000.0)`.

-- Closed candles only: the forming candle lives in the market stream's memory.
-- Keys are identifiers, not prose: byte order ("C") makes every key comparison a memcmp,
-- most of the cost of a bulk insert into the primary key. Checks are only the cheap ones
-- (measured: exact per-timeframe alignment and OHLC order cost a third of COPY throughput);
-- writers validate those before writing (`Candle.__post_init__`, `candle_copy.validate_rows`).
CREATE TABLE candles (
    exchange   text COLLATE "C" NOT NULL,
    symbol     text COLLATE "C" NOT NULL,
    timeframe  text COLLATE "C" NOT NULL CHECK (timeframe IN ('1m', '5m', '15m', '1h', '4h', '1d')),
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
    PRIMARY KEY (exchange, symbol, timeframe, open_time),
    CHECK (open_time % 60000 = 0)  -- every timeframe is whole minutes
);
CREATE INDEX candles_unannounced ON candles (open_time) WHERE NOT announced;

-- Every open_time before `verified_until` has been compared with the exchange's REST history:
-- it is stored, or the exchange has no candle there (a minute without trades). Gap repair
-- starts here, so an empty bucket is fetched once, not on every run.
CREATE TABLE candle_coverage (
    exchange        text   NOT NULL,
    symbol          text   NOT NULL,
    timeframe       text   NOT NULL CHECK (timeframe IN ('1m', '5m', '15m', '1h', '4h', '1d')),
    verified_until  bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (exchange, symbol, timeframe)
);

-- One row per market the platform follows or has stored. `fresh` is false while the live
-- feed is silent or the stored series has holes; consumers combine it with the age of the
-- newest candle, so a crashed stream that never cleared the flag still reads as stale.
CREATE TABLE market_freshness (
    exchange    text    NOT NULL,
    symbol      text    NOT NULL,
    fresh       boolean NOT NULL DEFAULT false,
    reason      text,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (exchange, symbol)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON candles, candle_coverage, market_freshness TO tekoa_app, tekoa_service;
