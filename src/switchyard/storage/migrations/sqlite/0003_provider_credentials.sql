-- Provider API keys set with `switchyard providers set-key`, sealed with AES-GCM under the
-- operator's master key (SWITCHYARD_MASTER_KEY). The database never holds a key in clear.

CREATE TABLE provider_credentials (
    slug        TEXT PRIMARY KEY,   -- the catalog provider slug
    sealed      TEXT NOT NULL,      -- "v1:" + base64(nonce || ciphertext || tag)
    updated_at  TEXT NOT NULL
);
