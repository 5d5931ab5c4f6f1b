-- Hardening: token generations, idempotency claims, sign-up throttling, and no API-token
-- secret left in a stored replay.

-- Sign-out and disabling end every access token of the account at once: a token carries the
-- generation it was issued under, and the API refuses one older than the account's.
ALTER TABLE users ADD COLUMN token_generation integer NOT NULL DEFAULT 0;

-- Only the request that claimed a key completes or releases it: once a claim was taken over
-- as abandoned, the request that abandoned it can no longer complete it.
ALTER TABLE idempotency_keys ADD COLUMN claim_id uuid;

-- Sign-ups per client address, for throttling. Written before any user exists: service role.
CREATE TABLE signup_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_address  text NOT NULL CHECK (length(client_address) <= 64),
    attempted_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signup_attempts_address ON signup_attempts (client_address, attempted_at);
CREATE INDEX signup_attempts_time ON signup_attempts (attempted_at);
ALTER TABLE signup_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE signup_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY service_access ON signup_attempts TO tekoa_service USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, DELETE ON signup_attempts TO tekoa_service;

-- The scheduled purge deletes by age alone.
CREATE INDEX login_attempts_time ON login_attempts (attempted_at);

-- Replays stored before now carry the secret of the token they created: keep only a hash,
-- as everywhere else. (RLS is forced even for the owner; the service role sees every row.)
SET LOCAL ROLE tekoa_service;
UPDATE idempotency_keys SET response_body = jsonb_set(response_body, '{secret}', 'null')
 WHERE request_path = '/v1/api-tokens' AND response_body ? 'secret';
RESET ROLE;
