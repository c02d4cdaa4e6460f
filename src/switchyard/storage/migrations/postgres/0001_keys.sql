-- Accounts, keys, credits, generations and daily activity.
-- Money is stored as BIGINT picodollars (1e-12 USD): exact sums in SQL on every backend.

CREATE TABLE accounts (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    -- 0: the operator's own account, never refused for lack of credit
    enforce_balance  BIGINT NOT NULL DEFAULT 1,
    total_credits    BIGINT NOT NULL DEFAULT 0,
    total_usage      BIGINT NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL
);

CREATE TABLE credit_grants (
    id          BIGSERIAL PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    amount      BIGINT NOT NULL,
    note        TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    hash                  TEXT PRIMARY KEY,      -- sha256 of the secret, hex
    account_id            TEXT NOT NULL REFERENCES accounts(id),
    kind                  TEXT NOT NULL CHECK (kind IN ('inference', 'management')),
    name                  TEXT NOT NULL,
    label                 TEXT NOT NULL,         -- a recognisable, non-secret rendering
    credit_limit          BIGINT,               -- picodollars; NULL for unlimited
    limit_reset           TEXT CHECK (limit_reset IN ('daily', 'weekly', 'monthly')),
    include_byok_in_limit BIGINT NOT NULL DEFAULT 0,
    disabled              BIGINT NOT NULL DEFAULT 0,
    expires_at            TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT,
    usage_total           BIGINT NOT NULL DEFAULT 0,
    usage_day             TEXT,                  -- the UTC day usage_daily counts
    usage_daily           BIGINT NOT NULL DEFAULT 0,
    usage_week            TEXT,                  -- the Monday that starts usage_weekly
    usage_weekly          BIGINT NOT NULL DEFAULT 0,
    usage_month           TEXT,                  -- YYYY-MM of usage_monthly
    usage_monthly         BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX api_keys_account ON api_keys(account_id);

CREATE TABLE generations (
    id                       TEXT PRIMARY KEY,
    account_id               TEXT NOT NULL,
    key_hash                 TEXT NOT NULL,
    created_at               TEXT NOT NULL,
    model                    TEXT NOT NULL,
    endpoint                 TEXT,
    provider_name            TEXT,
    streamed                 BIGINT NOT NULL,
    cancelled                BIGINT NOT NULL,
    finish_reason            TEXT,
    native_finish_reason     TEXT,
    latency_ms               DOUBLE PRECISION,
    generation_time_ms       DOUBLE PRECISION,
    tokens_prompt            BIGINT NOT NULL,
    tokens_completion        BIGINT NOT NULL,
    native_tokens_cached     BIGINT NOT NULL DEFAULT 0,
    native_tokens_reasoning  BIGINT NOT NULL DEFAULT 0,
    num_media_prompt         BIGINT NOT NULL DEFAULT 0,
    total_cost               BIGINT NOT NULL,
    cache_discount           BIGINT NOT NULL DEFAULT 0,
    http_referer             TEXT,
    app_title                TEXT,
    user_id                  TEXT,
    session_id               TEXT,
    provider_responses       TEXT NOT NULL       -- JSON: every attempt with status and latency
);

CREATE INDEX generations_account ON generations(account_id, created_at);

CREATE TABLE activity_daily (
    day               TEXT NOT NULL,
    account_id        TEXT NOT NULL,
    key_hash          TEXT NOT NULL,
    model             TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    provider_name     TEXT NOT NULL,
    requests          BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    reasoning_tokens  BIGINT NOT NULL,
    cached_tokens     BIGINT NOT NULL,
    usage             BIGINT NOT NULL,
    PRIMARY KEY (day, account_id, key_hash, model, endpoint)
);
