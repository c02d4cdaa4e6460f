"""The ASGI application: a route table, error rendering, and the process lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from switchyard.errors import NotFound, SwitchyardError
from switchyard.observability import Telemetry
from switchyard.server import (
    accounts,
    completions_api,
    embeddings_api,
    handlers,
    messages,
    metrics_api,
    models_api,
    openapi_api,
    responses_api,
)
from switchyard.server.fast_path import FastPath
from switchyard.server.middleware import RequestTelemetry
from switchyard.server.responses import JSONBytes, error_response
from switchyard.server.state import build_state
from switchyard.settings import Settings
from switchyard.shutdown import drain_on_signals
from switchyard.storage import StorageError
from switchyard.web.routes import ROUTES as WEB_ROUTES

log = logging.getLogger("switchyard.server")

API = "/api/v1"
_FLUSH_SECONDS = 5.0

ROUTES = [
    Route(f"{API}/chat/completions", handlers.chat_completions, methods=["POST"]),
    Route(f"{API}/embeddings", embeddings_api.create_embeddings, methods=["POST"]),
    Route(f"{API}/embeddings/models", embeddings_api.list_embeddings_models, methods=["GET"]),
    Route(f"{API}/responses", responses_api.create_response, methods=["POST"]),
    Route(f"{API}/messages", messages.create_message, methods=["POST"]),
    Route(f"{API}/completions", completions_api.completions, methods=["POST"]),
    Route(f"{API}/models", models_api.list_models, methods=["GET"]),
    Route(f"{API}/models/count", models_api.count_models, methods=["GET"]),
    Route(f"{API}/models/user", models_api.list_user_models, methods=["GET"]),
    Route(f"{API}/model/{{author}}/{{slug}}", models_api.get_model, methods=["GET"]),
    Route(
        f"{API}/models/{{author}}/{{slug}}/endpoints", models_api.model_endpoints, methods=["GET"]
    ),
    Route(f"{API}/providers", models_api.list_providers, methods=["GET"]),
    Route(f"{API}/key", accounts.current_key, methods=["GET"]),
    Route(f"{API}/keys", accounts.list_keys, methods=["GET"]),
    Route(f"{API}/keys", accounts.create_key, methods=["POST"]),
    Route(f"{API}/keys/{{hash}}", accounts.get_key, methods=["GET"]),
    Route(f"{API}/keys/{{hash}}", accounts.update_key, methods=["PATCH"]),
    Route(f"{API}/keys/{{hash}}", accounts.delete_key, methods=["DELETE"]),
    Route(f"{API}/credits", accounts.credits, methods=["GET"]),
    Route(f"{API}/generation", accounts.generation, methods=["GET"]),
    Route(f"{API}/activity", accounts.activity, methods=["GET"]),
    Route(f"{API}/openapi.json", openapi_api.get_openapi, methods=["GET"]),
    Route("/health", handlers.health, methods=["GET"]),
    Route("/metrics", metrics_api.metrics, methods=["GET"]),
    *WEB_ROUTES,
]

# Served by FastPath, bypassing Starlette's stack: the inference calls, where its cost counts.
FAST_POST = {
    f"{API}/chat/completions": handlers.chat_completions,
    f"{API}/embeddings": embeddings_api.create_embeddings,
    f"{API}/responses": responses_api.create_response,
    f"{API}/messages": messages.create_message,
    f"{API}/completions": completions_api.completions,
}


async def _switchyard_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SwitchyardError)
    if isinstance(exc, StorageError):
        # The client hears "unavailable"; the operator reads why.
        log.warning("%s %s: %s", request.method, request.url.path, exc.detail)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"No route for {request.method} {request.url.path}"))
    if exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
        return error_response(SwitchyardError(message, status=405))
    return error_response(SwitchyardError(str(exc.detail), status=exc.status_code))


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The traceback goes to the log; the client gets no internals.
    # (RequestTelemetry, outside the app, adds the X-Request-Id header on the way out.)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONBytes(b'{"error":{"code":500,"message":"Internal Server Error"}}', status_code=500)


def create_app(settings: Settings) -> RequestTelemetry:
    """The app; its state (database, providers, ...) is built when the server starts it."""
    telemetry = Telemetry.from_settings(settings, os.environ)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            state = await build_state(settings, telemetry=telemetry)
            try:
                await state.start()
                app.state.switchyard = state
                with drain_on_signals(state.drain):
                    yield
            finally:
                await state.aclose()
        finally:
            # After the last generation settled, so its span is exported; in a thread and
            # bounded, so an unreachable collector cannot hold up the process's exit.
            try:
                await asyncio.wait_for(asyncio.to_thread(telemetry.shutdown), _FLUSH_SECONDS)
            except TimeoutError:
                log.warning("traces not flushed within %s s; exiting anyway", _FLUSH_SECONDS)

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={
            SwitchyardError: _switchyard_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    # Outermost, so every request (the hot POSTs FastPath serves itself included) gets its
    # request id, its HTTP metrics and the caller's trace; even a 500 from Starlette's last
    # resort handler passes back through it and gets its X-Request-Id.
    return RequestTelemetry(FastPath(app, FAST_POST), telemetry=telemetry)
