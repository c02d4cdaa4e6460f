-- Accounts, keys, credits, generations and daily activity.
-- Money is stored as INTEGER picodollars (1e-12 USD): exact sums in SQL on every backend.

CREATE TABLE accounts (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    -- 0: the operator's own account, never refused for lack of credit
    enforce_balance  INTEGER NOT NULL DEFAULT 1,
    total_credits    INTEGER NOT NULL DEFAULT 0,
    total_usage      INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL
);

CREATE TABLE credit_grants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    amount      INTEGER NOT NULL,
    note        TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    hash                  TEXT PRIMARY KEY,      -- sha256 of the secret, hex
    account_id            TEXT NOT NULL REFERENCES accounts(id),
    kind                  TEXT NOT NULL CHECK (kind IN ('inference', 'management')),
    name                  TEXT NOT NULL,
    label                 TEXT NOT NULL,         -- a recognisable, non-secret rendering
    credit_limit          INTEGER,               -- picodollars; NULL for unlimited
    limit_reset           TEXT CHECK (limit_reset IN ('daily', 'weekly', 'monthly')),
    include_byok_in_limit INTEGER NOT NULL DEFAULT 0,
    disabled              INTEGER NOT NULL DEFAULT 0,
    expires_at            TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT,
    usage_total           INTEGER NOT NULL DEFAULT 0,
    usage_day             TEXT,                  -- the UTC day usage_daily counts
    usage_daily           INTEGER NOT NULL DEFAULT 0,
    usage_week            TEXT,                  -- the Monday that starts usage_weekly
    usage_weekly          INTEGER NOT NULL DEFAULT 0,
    usage_month           TEXT,                  -- YYYY-MM of usage_monthly
    usage_monthly         INTEGER NOT NULL DEFAULT 0
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
    streamed                 INTEGER NOT NULL,
    cancelled                INTEGER NOT NULL,
    finish_reason            TEXT,
    native_finish_reason     TEXT,
    latency_ms               REAL,
    generation_time_ms       REAL,
    tokens_prompt            INTEGER NOT NULL,
    tokens_completion        INTEGER NOT NULL,
    native_tokens_cached     INTEGER NOT NULL DEFAULT 0,
    native_tokens_reasoning  INTEGER NOT NULL DEFAULT 0,
    num_media_prompt         INTEGER NOT NULL DEFAULT 0,
    total_cost               INTEGER NOT NULL,
    cache_discount           INTEGER NOT NULL DEFAULT 0,
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
    requests          INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens  INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    usage             INTEGER NOT NULL,
    PRIMARY KEY (day, account_id, key_hash, model, endpoint)
);
