"""The ASGI application: a route table, error rendering, and the process lifecycle."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from switchyard.errors import NotFound, SwitchyardError
from switchyard.server import accounts, handlers
from switchyard.server.responses import JSONBytes, error_response
from switchyard.server.state import build_state
from switchyard.settings import Settings

log = logging.getLogger("switchyard.server")

API = "/api/v1"

ROUTES = [
    Route(f"{API}/chat/completions", handlers.chat_completions, methods=["POST"]),
    Route(f"{API}/models", handlers.list_models, methods=["GET"]),
    Route(f"{API}/model/{{author}}/{{slug}}", handlers.get_model, methods=["GET"]),
    Route(f"{API}/models/{{author}}/{{slug}}/endpoints", handlers.model_endpoints, methods=["GET"]),
    Route(f"{API}/providers", handlers.list_providers, methods=["GET"]),
    Route(f"{API}/key", accounts.current_key, methods=["GET"]),
    Route(f"{API}/keys", accounts.list_keys, methods=["GET"]),
    Route(f"{API}/keys", accounts.create_key, methods=["POST"]),
    Route(f"{API}/keys/{{hash}}", accounts.get_key, methods=["GET"]),
    Route(f"{API}/keys/{{hash}}", accounts.update_key, methods=["PATCH"]),
    Route(f"{API}/keys/{{hash}}", accounts.delete_key, methods=["DELETE"]),
    Route(f"{API}/credits", accounts.credits, methods=["GET"]),
    Route(f"{API}/generation", accounts.generation, methods=["GET"]),
    Route(f"{API}/activity", accounts.activity, methods=["GET"]),
    Route("/health", handlers.health, methods=["GET"]),
]


async def _switchyard_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SwitchyardError)
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
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONBytes(b'{"error":{"code":500,"message":"Internal Server Error"}}', status_code=500)


def create_app(settings: Settings) -> Starlette:
    """The app; its state (database, providers, ...) is built when the server starts it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = await build_state(settings)
        try:
            await state.start()
            app.state.switchyard = state
            yield
        finally:
            await state.aclose()

    return Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={
            SwitchyardError: _switchyard_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
