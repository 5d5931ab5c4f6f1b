-- Bots trade: evaluations (one per bot and candle), the runtime state of running bots (memory,
-- intents in flight, health), pinned strategy versions, and each user's risk limits and state.
--
-- Tenant tables follow the foundation's pattern; the evaluator and the market stream work
-- across tenants as tekoa_service.

-- ---------------------------------------------------------------------------------------------
-- A bot runs the strategy version it was started with: editing the strategy changes a running
-- bot only when it is restarted. Set at every start (NULL while the bot never ran).
ALTER TABLE bots ADD COLUMN strategy_version integer;
ALTER TABLE bots ADD CONSTRAINT bots_strategy_version
    FOREIGN KEY (strategy_id, strategy_version) REFERENCES strategy_versions (strategy_id, version);

-- The user-wide limits (daily loss, drawdown, open positions) moved to `user_risk`: a bot keeps
-- its risk per trade and its largest position. (RLS is forced even for the owner; the service
-- role sees every row.)
SET LOCAL ROLE tekoa_service;
UPDATE bots SET risk = risk - 'daily_loss_limit' - 'max_drawdown_pct' - 'max_open_positions';
-- Bots started before versions were pinned run the version that is current now.
UPDATE bots b SET strategy_version = s.version FROM strategies s
    WHERE s.id = b.strategy_id AND b.status <> 'stopped';
RESET ROLE;

-- ---------------------------------------------------------------------------------------------
-- What a running bot carries from one evaluation to the next.
--   memory       tekoa.domain.trading.BotMemory (grid levels, DCA safety orders, cooldown ...)
--   orders       every order the bot asked for (tekoa.domain.trading.RestingOrder, as the bot
--                decided it, before any resizing or rounding) until the executor records it final:
--                queued ones count as resting, so a lagging executor never sees an order twice
--   last_candle  open time (ms) of the newest candle evaluated or skipped
--   skips        consecutive skipped evaluations (N of them put the bot in error)
--   fills_after  fills created before this were shown to the bot; `bot_fills_seen` holds the
--                ones after it that were, so a fill is shown exactly once
CREATE TABLE bot_runtime (
    bot_id             uuid PRIMARY KEY,
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    memory             jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(memory) = 'object'),
    orders             jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(orders) = 'array'),
    last_candle        bigint,
    last_evaluated_at  timestamptz,
    skips              integer NOT NULL DEFAULT 0 CHECK (skips >= 0),
    fills_after        timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (bot_id, user_id) REFERENCES bots (id, user_id) ON DELETE CASCADE
);
CALL tekoa_enable_tenancy('bot_runtime');

CREATE TABLE bot_fills_seen (
    fill_id  uuid PRIMARY KEY,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bot_id   uuid NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bot_fills_seen_age ON bot_fills_seen (seen_at);
CALL tekoa_enable_tenancy('bot_fills_seen');

-- The evaluator reads the fills of the last minutes: append-only, time-ordered rows make a BRIN
-- index tiny and free to maintain.
CREATE INDEX fills_recent ON fills USING brin (created_at);

-- ---------------------------------------------------------------------------------------------
-- One evaluation per bot and candle: the UNIQUE key turns a re-fired schedule, a repeated
-- candle.closed event or a concurrent invocation into a no-op.
--   outcome   decided (the strategy ran) or skipped (why in `reason`: no data, stale data ...)
--   signal    buy / sell when the decision placed orders of that side first, else none
--   risk      one verdict per intent: {"client_order_id", "verdict", "reason"}
--   intents   the intents that passed the checks (resized where the checks cut them)
--   sent_at   when they were handed to the order queue; NULL until then (a crash in between
--             leaves them for the next tick to send, and their ids make a second send harmless)
CREATE TABLE evaluations (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bot_id            uuid NOT NULL,
    candle_open_time  bigint NOT NULL,
    timeframe         text NOT NULL CHECK (timeframe IN ('1m', '5m', '15m', '1h', '4h', '1d')),
    strategy_version  integer,
    outcome           text NOT NULL CHECK (outcome IN ('decided', 'skipped')),
    signal            text NOT NULL DEFAULT 'none' CHECK (signal IN ('buy', 'sell', 'none')),
    reason            text NOT NULL CHECK (length(reason) <= 1000),
    score             double precision,
    matched           jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(matched) = 'array'),
    risk_verdict      text CHECK (risk_verdict IN ('approved', 'resized', 'rejected', 'mixed')),
    risk              jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(risk) = 'array'),
    intents           jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(intents) = 'array'),
    sent_at           timestamptz,
    evaluated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT evaluations_once_per_candle UNIQUE (bot_id, candle_open_time),
    FOREIGN KEY (bot_id, user_id) REFERENCES bots (id, user_id) ON DELETE CASCADE
);
CREATE INDEX evaluations_unsent ON evaluations (evaluated_at) WHERE sent_at IS NULL AND intents <> '[]'::jsonb;
CREATE INDEX evaluations_age ON evaluations USING brin (evaluated_at);
CALL tekoa_enable_tenancy('evaluations');
REVOKE UPDATE ON evaluations FROM tekoa_app;

-- ---------------------------------------------------------------------------------------------
-- Each user's risk: the limits (tekoa.risk.limits.RiskLimits; {} = the defaults), the trading
-- state and why, and what the circuit breaker tracks (performance = equity less capital put in:
-- at the start of the UTC day, and its peak). No row = the defaults, active.
CREATE TABLE user_risk (
    user_id                uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    limits                 jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(limits) = 'object'),
    state                  text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'reducing', 'halted')),
    reason                 text CHECK (length(reason) <= 500),
    trip                   text CHECK (trip IN ('daily_loss', 'drawdown', 'kill_switch')),
    day                    date,
    day_start_performance  numeric,
    peak_performance       numeric,
    changed_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CALL tekoa_enable_tenancy('user_risk');
