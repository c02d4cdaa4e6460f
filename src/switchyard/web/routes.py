"""The pages' routes; server/app.py appends them after the API's."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from switchyard.web import account_pages, chat_page, model_page, models_page, stats_pages

STATIC = Path(__file__).parent / "static"

ROUTES: list[BaseRoute] = [
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
    Route("/", models_page.home, methods=["GET"]),
    Route("/models", models_page.models_page, methods=["GET"]),
    Route("/providers", stats_pages.providers_page, methods=["GET"]),
    Route("/rankings", stats_pages.rankings_page, methods=["GET"]),
    Route("/chat", chat_page.chat_page, methods=["GET"]),
    Route("/activity", account_pages.activity_page, methods=["GET"]),
    Route("/keys", account_pages.keys_page, methods=["GET"]),
    Route("/login", account_pages.login, methods=["POST"]),
    Route("/logout", account_pages.logout, methods=["POST"]),
    # Last: any other two-segment path is a model id.
    Route("/{author}/{slug}", model_page.model_page, methods=["GET"]),
]
