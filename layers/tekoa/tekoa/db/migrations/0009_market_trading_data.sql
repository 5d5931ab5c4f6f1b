-- What trading needs to know about a market: its precision and limits, and its last trade.
--
-- Shared market data like candles: not tenant tables. The API reads them (it has no ccxt);
-- the market stream and the executor (which do) write them.

-- Precision and limits of a market, as the exchange states them (ccxt's `markets`), used to
-- round and validate every order. Steps are tick sizes: 0.01 means two decimals.
CREATE TABLE market_rules (
    exchange      text COLLATE "C" NOT NULL,
    symbol        text COLLATE "C" NOT NULL,
    base          text NOT NULL,
    quote         text NOT NULL,
    amount_step   numeric NOT NULL CHECK (amount_step > 0),
    price_step    numeric NOT NULL CHECK (price_step > 0),
    min_amount    numeric CHECK (min_amount >= 0),
    max_amount    numeric CHECK (max_amount > 0),
    min_price     numeric CHECK (min_price >= 0),
    max_price     numeric CHECK (max_price > 0),
    min_notional  numeric CHECK (min_notional >= 0),
    max_notional  numeric CHECK (max_notional > 0),
    active        boolean NOT NULL DEFAULT true,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (exchange, symbol)
);

-- The newest trade the market stream saw per market, written at most about once a second per
-- market. Paper market orders fill at this price; the executor refuses it when it is stale.
CREATE TABLE market_last_trades (
    exchange    text COLLATE "C" NOT NULL,
    symbol      text COLLATE "C" NOT NULL,
    price       numeric NOT NULL CHECK (price > 0),
    trade_time  bigint NOT NULL CHECK (trade_time >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (exchange, symbol)
);

GRANT SELECT ON market_rules, market_last_trades TO tekoa_app, tekoa_service;
GRANT INSERT, UPDATE, DELETE ON market_rules, market_last_trades TO tekoa_service;
