-- Rollups the web pages read, so no page aggregates over the generations table.

-- Tokens per day by app (the HTTP-Referer / X-OpenRouter-Title attribution) and model,
-- written together with activity_daily when a generation is first recorded.
CREATE TABLE app_activity_daily (
    day               TEXT NOT NULL,
    app               TEXT NOT NULL,      -- the title when sent, else the referer
    http_referer      TEXT NOT NULL,
    model             TEXT NOT NULL,
    requests          INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    PRIMARY KEY (day, app, http_referer, model)
);

-- Periodic samples of the live health tracker: uptime, latency and throughput over time.
CREATE TABLE endpoint_health (
    sampled_at      TEXT NOT NULL,        -- ISO 8601 UTC, truncated to the second
    endpoint        TEXT NOT NULL,        -- Endpoint.key: model@provider-tag
    model           TEXT NOT NULL,
    provider_name   TEXT NOT NULL,
    uptime          REAL,                 -- percent over the last 5 minutes
    latency_p50     REAL,                 -- seconds to first token, last 30 minutes
    throughput_p50  REAL,                 -- output tokens per second, last 30 minutes
    PRIMARY KEY (model, sampled_at, endpoint)
);
