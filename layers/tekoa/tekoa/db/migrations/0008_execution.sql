-- Execution: trading accounts, a double-entry ledger with holds, orders (event-sourced, each
-- placed at most once), fills (each recorded exactly once), positions, the platform's trading
-- state, an outbox for order events, and bots that are archived instead of deleted.
--
-- Tenant tables follow the foundation's pattern (`user_id` + tekoa_enable_tenancy) and point
-- at each other with composite (id, user_id) keys, so a row can only reference its owner's.
--
-- Money and quantities are NUMERIC. Times a client sees are timestamptz here and milliseconds
-- at the wire; exchange times (trade time of a fill) are bigint ms as the exchange sends them.

-- ---------------------------------------------------------------------------------------------
-- Trading states. `active` trades; `reducing` accepts only orders that shrink a position;
-- `halted` accepts nothing. The platform row is the operators' switch; each account has its
-- own (the risk manager sets them). The executor reads both at execution time and fails
-- closed: a missing platform row reads as halted.
CREATE TABLE platform_trading_state (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'reducing', 'halted')),
    reason      text CHECK (length(reason) <= 500),
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO platform_trading_state DEFAULT VALUES;
GRANT SELECT ON platform_trading_state TO tekoa_app, tekoa_service;
GRANT UPDATE ON platform_trading_state TO tekoa_service;

-- ---------------------------------------------------------------------------------------------
-- One account per user × exchange × mode. A paper account starts with `starting_balance` of
-- its quote currency and can be reset to it; a live account mirrors the exchange through the
-- user's broker credential (its balances come from the exchange, by reconciliation).
CREATE TABLE accounts (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id               uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    exchange              text NOT NULL CHECK (exchange ~ '^[a-z][a-z0-9_]{0,39}$'),
    mode                  text NOT NULL CHECK (mode IN ('paper', 'live')),
    quote_currency        text NOT NULL CHECK (quote_currency ~ '^[A-Z0-9]{1,20}$'),
    starting_balance      numeric CHECK (starting_balance > 0 AND starting_balance <= 1e15),
    credential_id         uuid,
    trading_state         text NOT NULL DEFAULT 'active' CHECK (trading_state IN ('active', 'reducing', 'halted')),
    trading_state_reason  text CHECK (length(trading_state_reason) <= 500),
    resets                integer NOT NULL DEFAULT 0 CHECK (resets >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT accounts_one_per_market UNIQUE (user_id, exchange, mode),
    CONSTRAINT accounts_id_owner UNIQUE (id, user_id),
    CONSTRAINT accounts_paper_has_starting_balance CHECK ((mode = 'paper') = (starting_balance IS NOT NULL)),
    -- Deleting the credential leaves a live account that cannot trade (the executor rejects).
    FOREIGN KEY (credential_id, user_id) REFERENCES broker_credentials (id, user_id) ON DELETE SET NULL (credential_id)
);
CREATE INDEX accounts_credential ON accounts (credential_id) WHERE credential_id IS NOT NULL;
CALL tekoa_enable_tenancy('accounts');

-- ---------------------------------------------------------------------------------------------
-- The ledger. Every movement of money is a *posting*: entries for one account whose amounts
-- sum to zero per asset. Each entry moves an amount into one *book* of (account, asset):
--   available  what the account may spend (never negative)
--   held       reserved for open orders (never negative)
--   capital    deposits and resets (the owner's side: a 10 000 USDT deposit is capital -10 000)
--   market     the counterparty of trades (what the market gave and took)
--   fees       fees paid
-- `balances` holds the sum of every book, maintained by the trigger below from the same
-- statement that inserts the entries, so a stored balance is a sum of entries by construction;
-- reconciliation re-adds the entries to prove it.
CREATE SEQUENCE ledger_posting_id;
GRANT USAGE ON SEQUENCE ledger_posting_id TO tekoa_app, tekoa_service;

CREATE TABLE ledger_entries (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id  uuid NOT NULL,
    posting_id  bigint NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('deposit', 'hold', 'release', 'fill', 'reset', 'adjustment')),
    asset       text NOT NULL CHECK (asset ~ '^[A-Z0-9]{1,20}$'),
    book        text NOT NULL CHECK (book IN ('available', 'held', 'capital', 'market', 'fees')),
    amount      numeric NOT NULL CHECK (amount <> 0),
    order_id    uuid,
    fill_id     uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (account_id, user_id) REFERENCES accounts (id, user_id) ON DELETE CASCADE
);
CREATE INDEX ledger_entries_account ON ledger_entries (account_id, asset, book);
CREATE INDEX ledger_entries_posting ON ledger_entries (posting_id);
CREATE INDEX ledger_entries_order ON ledger_entries (order_id) WHERE order_id IS NOT NULL;
-- Reconciliation checks the accounts whose ledger moved lately: append-only, time-ordered rows
-- make a BRIN index tiny and free to maintain.
CREATE INDEX ledger_entries_recent ON ledger_entries USING brin (created_at);
CALL tekoa_enable_tenancy('ledger_entries');
REVOKE UPDATE, DELETE ON ledger_entries FROM tekoa_app, tekoa_service;

CREATE TABLE balances (
    account_id  uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    asset       text NOT NULL,
    book        text NOT NULL CHECK (book IN ('available', 'held', 'capital', 'market', 'fees')),
    amount      numeric NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, asset, book),
    FOREIGN KEY (account_id, user_id) REFERENCES accounts (id, user_id) ON DELETE CASCADE,
    -- The last line of defence against an overdraft: the executor checks first and says why.
    CONSTRAINT balances_spendable_never_negative CHECK (book NOT IN ('available', 'held') OR amount >= 0)
);
CALL tekoa_enable_tenancy('balances');
REVOKE DELETE ON balances FROM tekoa_app, tekoa_service;

CREATE FUNCTION tekoa_ledger_post() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    -- A posting is one INSERT statement: it must balance per asset and stay in one account.
    IF EXISTS (
        SELECT 1 FROM new_entries GROUP BY posting_id, asset HAVING sum(amount) <> 0
    ) OR EXISTS (
        SELECT 1 FROM new_entries GROUP BY posting_id HAVING count(DISTINCT account_id) > 1
    ) THEN
        RAISE EXCEPTION 'unbalanced ledger posting' USING ERRCODE = 'check_violation',
            CONSTRAINT = 'ledger_posting_balances';
    END IF;
    -- Update the books that exist, create the rest. (Not INSERT ... ON CONFLICT: CHECK
    -- constraints apply to the proposed row, so a debit would fail as a negative new book.)
    -- Postings are written under the account's row lock, so two cannot race to create a book.
    WITH sums AS (
        SELECT account_id, user_id, asset, book, sum(amount) AS amount
        FROM new_entries GROUP BY account_id, user_id, asset, book
    ), updated AS (
        UPDATE balances AS b SET amount = b.amount + s.amount, updated_at = now()
        FROM sums AS s
        WHERE (b.account_id, b.asset, b.book) = (s.account_id, s.asset, s.book)
        RETURNING b.account_id, b.asset, b.book
    )
    INSERT INTO balances (account_id, user_id, asset, book, amount)
    SELECT s.account_id, s.user_id, s.asset, s.book, s.amount FROM sums AS s
    WHERE NOT EXISTS (
        SELECT 1 FROM updated AS u WHERE (u.account_id, u.asset, u.book) = (s.account_id, s.asset, s.book));
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_entries_post AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION tekoa_ledger_post();

-- ---------------------------------------------------------------------------------------------
-- Bots with orders are archived, never deleted (their orders and the ledger refer to them).
ALTER TABLE bots ADD COLUMN archived_at timestamptz;
DROP INDEX bots_user_name;
CREATE UNIQUE INDEX bots_user_name ON bots (user_id, lower(name)) WHERE archived_at IS NULL;

-- ---------------------------------------------------------------------------------------------
-- Orders. `client_order_id` is the business key: the same decision always yields the same id,
-- and this constraint turns every duplicate delivery into a no-op. The status follows
-- tekoa.domain.execution.ORDER_TRANSITIONS; `held_amount` is what the order still holds of
-- `held_asset` (zero once the order is final), so the held book equals the sum over open orders.
CREATE TABLE orders (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id         uuid NOT NULL,
    bot_id             uuid,
    client_order_id    text NOT NULL CHECK (client_order_id ~ '^[A-Za-z0-9_-]{1,36}$'),
    exchange           text NOT NULL,
    symbol             text NOT NULL CHECK (symbol ~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$'),
    side               text NOT NULL CHECK (side IN ('buy', 'sell')),
    type               text NOT NULL CHECK (type IN ('market', 'limit', 'stop')),
    quantity           numeric NOT NULL CHECK (quantity > 0),
    limit_price        numeric CHECK (limit_price > 0),
    stop_price         numeric CHECK (stop_price > 0),
    reduce_only        boolean NOT NULL DEFAULT false,
    status             text NOT NULL DEFAULT 'new'
                       CHECK (status IN ('new', 'submitted', 'open', 'partially_filled', 'filled',
                                         'canceled', 'rejected', 'expired')),
    filled_quantity    numeric NOT NULL DEFAULT 0 CHECK (filled_quantity >= 0),
    average_price      numeric CHECK (average_price > 0),
    -- Fees paid so far per currency, as decimal strings: {"USDT": "0.06"}.
    fees               jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(fees) = 'object'),
    held_asset         text,
    held_amount        numeric NOT NULL DEFAULT 0 CHECK (held_amount >= 0),
    exchange_order_id  text CHECK (length(exchange_order_id) <= 128),
    reason             text CHECK (length(reason) <= 1000),
    reject_code        text CHECK (reject_code ~ '^[A-Z_]{1,40}$'),
    -- What the bot asked for besides the order itself (attached stop, take-profit ladder, why).
    intent             jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(intent) = 'object'),
    -- Consecutive "not found" answers to look-ups by client id (live): lost only after several.
    not_found_count    integer NOT NULL DEFAULT 0 CHECK (not_found_count >= 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    submitted_at       timestamptz,
    closed_at          timestamptz,
    CONSTRAINT orders_client_order_id_per_account UNIQUE (account_id, client_order_id),
    CONSTRAINT orders_id_owner UNIQUE (id, user_id),
    CONSTRAINT orders_limit_has_price CHECK (type <> 'limit' OR limit_price IS NOT NULL),
    CONSTRAINT orders_stop_has_trigger CHECK (type <> 'stop' OR stop_price IS NOT NULL),
    CONSTRAINT orders_fill_within_quantity CHECK (filled_quantity <= quantity),
    CONSTRAINT orders_final_holds_nothing CHECK (
        status NOT IN ('filled', 'canceled', 'rejected', 'expired') OR held_amount = 0),
    CONSTRAINT orders_final_is_closed CHECK (
        (status IN ('filled', 'canceled', 'rejected', 'expired')) = (closed_at IS NOT NULL)),
    FOREIGN KEY (account_id, user_id) REFERENCES accounts (id, user_id) ON DELETE CASCADE,
    -- NO ACTION, not RESTRICT: a user's deletion removes bots and orders in one statement.
    FOREIGN KEY (bot_id, user_id) REFERENCES bots (id, user_id)
);
CREATE INDEX orders_user_page ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_bot ON orders (bot_id, created_at DESC) WHERE bot_id IS NOT NULL;
-- Working orders: per market (paper matching, reconciliation) and per account and market (the
-- executor's pending sells). Partial: they stay small however long the order history grows.
CREATE INDEX orders_working ON orders (exchange, symbol)
    WHERE status IN ('new', 'submitted', 'open', 'partially_filled');
CREATE INDEX orders_working_account ON orders (account_id, symbol)
    WHERE status IN ('new', 'submitted', 'open', 'partially_filled');
CALL tekoa_enable_tenancy('orders');
REVOKE DELETE ON orders FROM tekoa_app, tekoa_service;

-- Append-only: everything that happened to an order, in order.
CREATE TABLE order_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    order_id     uuid NOT NULL,
    kind         text NOT NULL CHECK (kind ~ '^[a-z_]{1,40}$'),
    from_status  text,
    to_status    text NOT NULL,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(detail) = 'object'),
    at           timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (order_id, user_id) REFERENCES orders (id, user_id) ON DELETE CASCADE
);
CREATE INDEX order_events_order ON order_events (order_id, id);
CALL tekoa_enable_tenancy('order_events');
REVOKE UPDATE, DELETE ON order_events FROM tekoa_app, tekoa_service;

-- Each execution once: an exchange trade id (paper: derived from the price event) per order.
CREATE TABLE fills (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    order_id      uuid NOT NULL,
    trade_id      text NOT NULL CHECK (length(trade_id) BETWEEN 1 AND 128),
    quantity      numeric NOT NULL CHECK (quantity > 0),
    price         numeric NOT NULL CHECK (price > 0),
    fee           numeric NOT NULL CHECK (fee >= 0),
    fee_currency  text NOT NULL CHECK (fee_currency ~ '^[A-Z0-9]{1,20}$'),
    liquidity     text NOT NULL CHECK (liquidity IN ('maker', 'taker')),
    executed_at   bigint NOT NULL CHECK (executed_at >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fills_once_per_trade UNIQUE (order_id, trade_id),
    FOREIGN KEY (order_id, user_id) REFERENCES orders (id, user_id) ON DELETE CASCADE
);
CALL tekoa_enable_tenancy('fills');
REVOKE UPDATE, DELETE ON fills FROM tekoa_app, tekoa_service;

-- ---------------------------------------------------------------------------------------------
-- Positions: per bot, or per account and symbol for manual trading (bot_id NULL). At most one
-- open position per (account, bot, symbol); a closed position is a round trip (a trade).
-- Spot, so long only: sells reduce a position and never make it negative (short positions need
-- margin accounts, which Tekoa does not have).
CREATE TABLE positions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    account_id        uuid NOT NULL,
    bot_id            uuid,
    exchange          text NOT NULL,
    symbol            text NOT NULL,
    side              text NOT NULL DEFAULT 'long' CHECK (side = 'long'),
    quantity          numeric NOT NULL CHECK (quantity >= 0),
    average_entry     numeric NOT NULL CHECK (average_entry > 0),
    entry_quantity    numeric NOT NULL CHECK (entry_quantity > 0),
    exit_quantity     numeric NOT NULL DEFAULT 0 CHECK (exit_quantity >= 0),
    exit_value        numeric NOT NULL DEFAULT 0 CHECK (exit_value >= 0),
    realized_pnl      numeric NOT NULL DEFAULT 0,
    fees              numeric NOT NULL DEFAULT 0 CHECK (fees >= 0),
    -- tekoa.domain.trading.ProtectionState (stop, take-profit ladder and which targets were hit,
    -- trailing anchor), armed when the entry filled; the position manager moves it.
    protection        jsonb CHECK (jsonb_typeof(protection) = 'object'),
    opened_at         timestamptz NOT NULL DEFAULT now(),
    closed_at         timestamptz,
    close_reason      text CHECK (length(close_reason) <= 200),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT positions_id_owner UNIQUE (id, user_id),
    CONSTRAINT positions_closed_is_flat CHECK (closed_at IS NULL OR quantity = 0),
    FOREIGN KEY (account_id, user_id) REFERENCES accounts (id, user_id) ON DELETE CASCADE,
    FOREIGN KEY (bot_id, user_id) REFERENCES bots (id, user_id)
);
CREATE UNIQUE INDEX positions_one_open ON positions (account_id, bot_id, symbol) NULLS NOT DISTINCT
    WHERE closed_at IS NULL;
CREATE INDEX positions_user_page ON positions (user_id, opened_at DESC, id DESC);
CREATE INDEX positions_user_closed ON positions (user_id, closed_at DESC, id DESC) WHERE closed_at IS NOT NULL;
CALL tekoa_enable_tenancy('positions');
REVOKE DELETE ON positions FROM tekoa_app, tekoa_service;

-- Which position each fill moved (a fill belongs to one order; the order to one position).
ALTER TABLE orders ADD COLUMN position_id uuid;
ALTER TABLE orders ADD CONSTRAINT orders_position FOREIGN KEY (position_id, user_id)
    REFERENCES positions (id, user_id);

-- ---------------------------------------------------------------------------------------------
-- Transactional outbox: events written in the transaction of the change they announce, put on
-- the bus after the commit and deleted then. A crash in between leaves them here for the
-- reconciler, which publishes what is older than a few seconds: at-least-once, like candles.
CREATE TABLE event_outbox (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    detail_type  text NOT NULL CHECK (detail_type ~ '^[a-z_]+\.[a-z_]+$'),
    detail       jsonb NOT NULL CHECK (jsonb_typeof(detail) = 'object'),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_outbox_age ON event_outbox (created_at);
CALL tekoa_enable_tenancy('event_outbox');
