-- Live updates: the WebSocket connections API Gateway holds for users, and the channels that
-- notify users of what their bots do (Telegram, webhooks).

-- One row per open WebSocket connection (API Gateway's connection id). `channels` are what the
-- connection subscribed to: 'market:<exchange>:<symbol>:<timeframe>', 'bot:<uuid>' or 'bot:*'.
-- A connection opened with an access token remembers the account's token generation then, and
-- one opened with a personal API token remembers the token: after a sign-out or a revocation
-- nothing more is pushed to it and it is closed. API Gateway ends every connection after two
-- hours; `expires_at` lets a missed $disconnect age out.
CREATE TABLE ws_connections (
    connection_id     text PRIMARY KEY CHECK (length(connection_id) BETWEEN 1 AND 128),
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_generation  integer,
    api_token_id      uuid REFERENCES api_tokens (id) ON DELETE CASCADE,
    channels          text[] NOT NULL DEFAULT '{}' CHECK (cardinality(channels) <= 100),
    connected_at      timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL
);
CREATE INDEX ws_connections_user ON ws_connections (user_id);
CREATE INDEX ws_connections_channels ON ws_connections USING gin (channels);
CREATE INDEX ws_connections_expiry ON ws_connections (expires_at);
CALL tekoa_enable_tenancy('ws_connections');

-- Where a user is told about fills, stops hit, tripped risk limits, failed bots and the day's
-- summary. `target` is the Telegram chat id or the webhook URL; the secret (the Telegram bot
-- token, or the webhook's signing key) is envelope-encrypted as broker keys are, bound to
-- {user_id, channel_id}; `hint` is all the API ever shows of it.
CREATE TABLE notification_channels (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('telegram', 'webhook')),
    name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100 AND name = btrim(name)),
    target        text NOT NULL CHECK (length(target) BETWEEN 1 AND 2048),
    events        text[] NOT NULL CHECK (
                      cardinality(events) BETWEEN 1 AND 5
                      AND events <@ ARRAY['fills', 'stop_hit', 'risk_tripped', 'bot_error', 'daily_summary']
                  ),
    enabled       boolean NOT NULL DEFAULT true,
    hint          text NOT NULL CHECK (length(hint) <= 24),
    key_provider  text NOT NULL CHECK (key_provider IN ('kms', 'file')),
    key_id        text NOT NULL CHECK (length(key_id) BETWEEN 1 AND 2048),
    wrapped_key   bytea NOT NULL CHECK (octet_length(wrapped_key) BETWEEN 1 AND 4096),
    nonce         bytea NOT NULL CHECK (octet_length(nonce) = 12),
    ciphertext    bytea NOT NULL CHECK (octet_length(ciphertext) BETWEEN 17 AND 4096),
    version       integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_channels_user_page ON notification_channels (user_id, created_at DESC, id DESC);
CREATE INDEX notification_channels_events ON notification_channels USING gin (events) WHERE enabled;
CALL tekoa_enable_tenancy('notification_channels');
