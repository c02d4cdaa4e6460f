-- Accounts and API keys. Money columns hold decimal strings (never floats).
CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    balance     TEXT NOT NULL DEFAULT '0',
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    hash                  TEXT PRIMARY KEY,      -- sha256 of the secret, hex
    account_id            TEXT NOT NULL REFERENCES accounts(id),
    kind                  TEXT NOT NULL CHECK (kind IN ('inference', 'management')),
    name                  TEXT NOT NULL,
    label                 TEXT NOT NULL,         -- a recognisable, non-secret rendering
    credit_limit          TEXT,                  -- USD, NULL for unlimited
    limit_reset           TEXT CHECK (limit_reset IN ('daily', 'weekly', 'monthly')),
    include_byok_in_limit INTEGER NOT NULL DEFAULT 0,
    disabled              INTEGER NOT NULL DEFAULT 0,
    expires_at            TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT
);

CREATE INDEX api_keys_account ON api_keys(account_id);
