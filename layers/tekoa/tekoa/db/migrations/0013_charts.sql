-- Charts: one row per rendered (or pending) chart image, content-addressed per user.
--
-- `digest` is the SHA-256 of everything the image shows (market, range, indicators, style,
-- size, and stamps of the candles and the bot's fills it was drawn from), so an identical
-- request finds the existing row and its object. The PNG lives in the charts bucket under
-- `object_key` = charts/<user_id>/<digest>.png; the bucket's lifecycle rule may expire it
-- before the row goes, which is why readers check the object before they hand out a URL.

CREATE TABLE charts (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bot_id       uuid,
    digest       text NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
    object_key   text NOT NULL CHECK (object_key = 'charts/' || user_id || '/' || digest || '.png'),
    -- tekoa.charts.spec.ChartDocument: what to draw, resolved (absolute range, defaults filled).
    document     jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'failed')),
    error        text CHECK (length(error) <= 1000),
    -- Who asked: the API (a user) or the platform (a trade closed).
    origin       text NOT NULL CHECK (origin IN ('api', 'trade_closed')),
    -- When the chart was last queued for rendering: a pending chart whose message was lost
    -- is queued again after a while.
    queued_at    timestamptz NOT NULL DEFAULT now(),
    rendered_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT charts_one_per_content UNIQUE (user_id, digest),
    CONSTRAINT charts_ready_when_rendered CHECK ((status = 'ready') = (rendered_at IS NOT NULL)),
    FOREIGN KEY (bot_id, user_id) REFERENCES bots (id, user_id) ON DELETE CASCADE
);
CREATE INDEX charts_bot ON charts (bot_id, created_at DESC) WHERE bot_id IS NOT NULL;
CALL tekoa_enable_tenancy('charts');
