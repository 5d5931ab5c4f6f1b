-- Foundation: application roles, the tenancy pattern, users and the audit log.
--
-- Tenancy pattern (every later tenant table copies it with one CALL):
--   * the table has a `user_id uuid NOT NULL` column (users itself uses `id`);
--   * row level security is ENABLED and FORCED, so even the table owner is filtered;
--   * `tekoa_app` (per-user requests) sees only rows where the owner column equals the
--     transaction's `tekoa.user_id`; `tekoa_service` (platform work) sees all rows;
--   * neither role owns anything: they are switched to per transaction (SET LOCAL ROLE).

DO $$
BEGIN
    CREATE ROLE tekoa_app NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

DO $$
BEGIN
    CREATE ROLE tekoa_service NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- The login role (migration owner) must be allowed to switch into both roles.
GRANT tekoa_app, tekoa_service TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO tekoa_app, tekoa_service;

CREATE FUNCTION tekoa_current_user_id() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT NULLIF(current_setting('tekoa.user_id', true), '')::uuid $$;

CREATE PROCEDURE tekoa_enable_tenancy(target regclass, owner_column text DEFAULT 'user_id')
    LANGUAGE plpgsql
    AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', target);
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', target);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s TO tekoa_app '
        'USING (%I = tekoa_current_user_id()) WITH CHECK (%I = tekoa_current_user_id())',
        target, owner_column, owner_column);
    EXECUTE format('CREATE POLICY service_access ON %s TO tekoa_service USING (true) WITH CHECK (true)', target);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO tekoa_app, tekoa_service', target);
END $$;

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    password_hash  text NOT NULL,
    display_name   text CHECK (length(display_name) <= 100),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CALL tekoa_enable_tenancy('users', 'id');

-- Append-only: who did what to which object, never with secret values.
CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action       text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    target_type  text,
    target_id    text,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id   text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_user_time ON audit_log (user_id, created_at DESC);
CALL tekoa_enable_tenancy('audit_log');
REVOKE UPDATE, DELETE ON audit_log FROM tekoa_app, tekoa_service;
