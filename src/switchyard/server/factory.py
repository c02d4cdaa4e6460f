"""Build the app inside each server process from the settings the CLI resolved."""

from __future__ import annotations

import os

import msgspec
from starlette.applications import Starlette

from switchyard.server.app import create_app
from switchyard.settings import Settings

SETTINGS_ENV = "SWITCHYARD_RESOLVED_SETTINGS"


def app_from_env() -> Starlette:
    settings = msgspec.json.decode(os.environ[SETTINGS_ENV], type=Settings)
    return create_app(settings)
