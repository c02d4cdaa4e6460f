"""Build the app inside each server process from the settings the CLI resolved."""

from __future__ import annotations

import os

import msgspec
from starlette.types import ASGIApp

from switchyard.server.app import create_app
from switchyard.settings import Settings

SETTINGS_ENV = "SWITCHYARD_RESOLVED_SETTINGS"


def configure_logging(settings: Settings) -> None:
    """Our logging (text or JSON, request ids, secrets masked) for this process. Worker
    processes start fresh (spawned), so each calls this for itself; every line carries the
    process id, which says which worker spoke."""
    from switchyard.observability.logs import Redactor, secret_env_values
    from switchyard.observability.logs import configure_logging as configure

    redactor = Redactor([*settings.secrets(), *secret_env_values(os.environ)])
    configure(settings.log_level, settings.log_format, redactor)


def app_from_env() -> ASGIApp:
    settings = msgspec.json.decode(os.environ[SETTINGS_ENV], type=Settings)
    configure_logging(settings)
    return create_app(settings)
