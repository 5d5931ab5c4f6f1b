-- Trading resources: strategies (named, versioned), bots and their status history, broker
-- credentials (envelope-encrypted) and the per-user activity log.
--
-- Every table follows the foundation's tenancy pattern (`user_id` + tekoa_enable_tenancy).
-- References between tenant tables are composite `(id, user_id)` foreign keys, so a row can
-- only ever point at an object of the same owner: a forged id from another tenant fails in
-- the database even if a service forgot to check (foreign-key checks bypass row security).

CREATE TABLE strategies (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100 AND name = btrim(name)),
    description  text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    -- The tekoa.strategies StrategyDefinition, validated by the service before it is stored.
    definition   jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    kind         text NOT NULL CHECK (kind IN ('builtin', 'rules')),
    bot_type     text CHECK (bot_type IN ('scalper', 'grid', 'dca', 'dip', 'momentum')),
    enabled      boolean NOT NULL DEFAULT true,
    version      integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT strategies_kind_matches_definition CHECK (definition ->> 'kind' = kind),
    CONSTRAINT strategies_builtin_has_bot_type CHECK ((kind = 'builtin') = (bot_type IS NOT NULL)),
    CONSTRAINT strategies_id_owner UNIQUE (id, user_id)
);
CREATE UNIQUE INDEX strategies_user_name ON strategies (user_id, lower(name));
CREATE INDEX strategies_user_page ON strategies (user_id, created_at DESC, id DESC);
CALL tekoa_enable_tenancy('strategies');

-- Append-only: every version a strategy has had, including the first.
CREATE TABLE strategy_versions (
    strategy_id  uuid NOT NULL,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    version      integer NOT NULL CHECK (version >= 1),
    name         text NOT NULL,
    description  text NOT NULL,
    definition   jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    enabled      boolean NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (strategy_id, version),
    FOREIGN KEY (strategy_id, user_id) REFERENCES strategies (id, user_id) ON DELETE CASCADE
);
CALL tekoa_enable_tenancy('strategy_versions');
REVOKE UPDATE, DELETE ON strategy_versions FROM tekoa_app;

CREATE TABLE broker_credentials (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    exchange      text NOT NULL CHECK (exchange ~ '^[a-z][a-z0-9_]{0,39}$'),
    label         text NOT NULL CHECK (length(btrim(label)) BETWEEN 1 AND 100),
    -- First 4 … last 4 characters of the API key: all the API ever shows of a secret.
    hint          text NOT NULL CHECK (length(hint) <= 16),
    -- Envelope encryption: a data key per credential, wrapped by the key provider (KMS or
    -- the local key file), and the AES-256-GCM payload encrypted under that data key.
    key_provider  text NOT NULL CHECK (key_provider IN ('kms', 'file')),
    key_id        text NOT NULL CHECK (length(key_id) BETWEEN 1 AND 2048),
    wrapped_key   bytea NOT NULL CHECK (octet_length(wrapped_key) BETWEEN 1 AND 4096),
    nonce         bytea NOT NULL CHECK (octet_length(nonce) = 12),
    ciphertext    bytea NOT NULL CHECK (octet_length(ciphertext) BETWEEN 17 AND 65536),
    verified_at   timestamptz,
    last_used_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT broker_credentials_id_owner UNIQUE (id, user_id)
);
CREATE INDEX broker_credentials_user_page ON broker_credentials (user_id, created_at DESC, id DESC);
CALL tekoa_enable_tenancy('broker_credentials');

CREATE TABLE bots (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name               text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100 AND name = btrim(name)),
    strategy_id        uuid NOT NULL,
    credential_id      uuid,
    -- A ccxt exchange id, or 'simulated' for the local random-walk market.
    exchange           text NOT NULL CHECK (exchange ~ '^[a-z][a-z0-9_]{0,39}$'),
    symbol             text NOT NULL CHECK (symbol ~ '^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$'),
    timeframe          text NOT NULL CHECK (timeframe IN ('1m', '5m', '15m', '1h', '4h', '1d')),
    mode               text NOT NULL DEFAULT 'paper' CHECK (mode IN ('paper', 'live')),
    -- tekoa.domain.bots.RiskSettings; Decimal values are stored as JSON strings (exact).
    risk               jsonb NOT NULL CHECK (jsonb_typeof(risk) = 'object'),
    status             text NOT NULL DEFAULT 'stopped' CHECK (status IN ('stopped', 'running', 'paused', 'error')),
    -- When the owner confirmed that this bot trades real money (required for live mode).
    live_confirmed_at  timestamptz,
    version            integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT bots_live_needs_credential CHECK (mode = 'paper' OR credential_id IS NOT NULL),
    CONSTRAINT bots_live_needs_confirmation CHECK (mode = 'paper' OR live_confirmed_at IS NOT NULL),
    CONSTRAINT bots_id_owner UNIQUE (id, user_id),
    -- A strategy or credential in use cannot disappear under a bot: the API answers 409.
    FOREIGN KEY (strategy_id, user_id) REFERENCES strategies (id, user_id) ON DELETE RESTRICT,
    FOREIGN KEY (credential_id, user_id) REFERENCES broker_credentials (id, user_id) ON DELETE RESTRICT
);
CREATE UNIQUE INDEX bots_user_name ON bots (user_id, lower(name));
CREATE INDEX bots_user_page ON bots (user_id, created_at DESC, id DESC);
CREATE INDEX bots_strategy ON bots (strategy_id);
CREATE INDEX bots_credential ON bots (credential_id) WHERE credential_id IS NOT NULL;
-- The market stream and the evaluator ask which markets running bots trade.
CREATE INDEX bots_running_market ON bots (exchange, symbol, timeframe) WHERE status = 'running';
CALL tekoa_enable_tenancy('bots');

-- Append-only: every status change of a bot, who made it and why.
CREATE TABLE bot_status_changes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bot_id       uuid NOT NULL,
    from_status  text NOT NULL CHECK (from_status IN ('stopped', 'running', 'paused', 'error')),
    to_status    text NOT NULL CHECK (to_status IN ('stopped', 'running', 'paused', 'error')),
    action       text NOT NULL CHECK (action IN ('start', 'stop', 'pause', 'fail')),
    reason       text CHECK (length(reason) <= 500),
    actor        text NOT NULL CHECK (actor IN ('user', 'system')),
    at           timestamptz NOT NULL DEFAULT now(),
    CHECK (from_status <> to_status),
    FOREIGN KEY (bot_id, user_id) REFERENCES bots (id, user_id) ON DELETE CASCADE
);
CREATE INDEX bot_status_changes_bot ON bot_status_changes (bot_id, id DESC);
CALL tekoa_enable_tenancy('bot_status_changes');
REVOKE UPDATE, DELETE ON bot_status_changes FROM tekoa_app;

-- What a user sees in the activity feed. Entries outlive their bot (bot_id becomes NULL).
CREATE TABLE activity (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bot_id      uuid,
    level       text NOT NULL CHECK (level IN ('info', 'success', 'warning', 'error')),
    message     text NOT NULL CHECK (length(message) BETWEEN 1 AND 2000),
    data        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (bot_id, user_id) REFERENCES bots (id, user_id) ON DELETE SET NULL (bot_id)
);
-- Newest first by id (a total order, so a cursor is exact), optionally for one bot.
CREATE INDEX activity_user_page ON activity (user_id, id DESC);
CREATE INDEX activity_user_bot_page ON activity (user_id, bot_id, id DESC);
CALL tekoa_enable_tenancy('activity');
REVOKE UPDATE ON activity FROM tekoa_app;
