-- Authentication: refresh tokens (rotating, reuse-detecting families), personal API tokens,
-- sign-in throttling and idempotency keys. Secrets are stored only as SHA-256 hashes: the
-- tokens are high-entropy random values, so a fast hash is enough to make a leaked table useless.

CREATE TABLE refresh_tokens (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- Every token descended from one sign-in shares a family: reuse of any member revokes all.
    family_id       uuid NOT NULL,
    parent_id       uuid REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    token_hash      bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    revoked_at      timestamptz,
    user_agent      text CHECK (length(user_agent) <= 512),
    client_address  text CHECK (length(client_address) <= 64)
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CALL tekoa_enable_tenancy('refresh_tokens');

CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- The public part of `tk_<prefix>_<secret>`: finds the row before the hash is compared.
    prefix        text NOT NULL UNIQUE CHECK (prefix ~ '^[0-9a-f]{12}$'),
    token_hash    bytea NOT NULL CHECK (length(token_hash) = 32),
    scope         text NOT NULL CHECK (scope IN ('read', 'trading')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    expires_at    timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_tokens_user_listing ON api_tokens (user_id, created_at DESC, id DESC);
CALL tekoa_enable_tenancy('api_tokens');

-- Failed sign-ins, counted per account and per client address. Written before a user is
-- known (and for emails that match no user), so it is platform data: service role only.
CREATE TABLE login_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           text NOT NULL CHECK (length(email) <= 320),
    client_address  text NOT NULL CHECK (length(client_address) <= 64),
    attempted_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_email ON login_attempts (email, attempted_at);
CREATE INDEX login_attempts_address ON login_attempts (client_address, attempted_at);
ALTER TABLE login_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE login_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY service_access ON login_attempts TO tekoa_service USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, DELETE ON login_attempts TO tekoa_service;

-- One row per (user, Idempotency-Key): the primary key is the lock that stops two concurrent
-- requests with the same key from both creating; the stored response is replayed for 24 h.
CREATE TABLE idempotency_keys (
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key               text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_method    text NOT NULL,
    request_path      text NOT NULL,
    request_hash      bytea NOT NULL,
    response_status   smallint,
    response_body     jsonb,
    response_headers  jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    expires_at        timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
CALL tekoa_enable_tenancy('idempotency_keys');
