"""Pure ASGI middleware around every HTTP request: its id, its metrics, the caller's trace.

- Request id: the client's ``X-Request-Id`` if sane, else a new one; bound for every log
  line emitted while serving the request, and returned in the response's ``X-Request-Id``.
- Metrics: one count and one duration per request, labelled by the matched route's
  template (``/api/v1/keys/{hash}``, never the raw path) once routing has run.
- Traces (when on): a W3C ``traceparent`` header makes the caller's trace current, so the
  generation spans join it.

Pure ASGI rather than Starlette's BaseHTTPMiddleware: no extra task or body buffering per
request, and streamed responses pass through untouched.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchyard.observability.metrics import UNMATCHED_ROUTE
from switchyard.observability.request_context import (
    accepted_request_id,
    bind_request_id,
    unbind_request_id,
)
from switchyard.observability.telemetry import Telemetry

# Where the request id is kept in the ASGI scope, for code that has the scope but may run
# outside the request's context (the last-resort 500 handler).
REQUEST_ID_SCOPE_KEY = "switchyard.request_id"
_HEADER = b"x-request-id"


class RequestTelemetry:
    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.metrics = telemetry.metrics
        self.tracer = telemetry.tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        incoming = None
        for name, value in headers:
            if name == _HEADER:
                incoming = value
                break
        request_id = accepted_request_id(incoming)
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        id_header = (_HEADER, request_id.encode("ascii"))
        status = 500  # if the app fails before it responds

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # A new list: the response object may reuse its own.
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)

        token = bind_request_id(request_id)
        trace_token = self.tracer.join_caller_trace(headers) if self.tracer else None
        self.metrics.http_in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            # Leave the id bound: the outer error handler logs the traceback after this
            # returns, and that line must carry it too. The request's task (and its
            # context) ends with the request.
            trace_token = None
            raise
        else:
            unbind_request_id(token)
        finally:
            self.metrics.http_in_progress.dec()
            if trace_token is not None and self.tracer is not None:
                self.tracer.leave(trace_token)
            self.metrics.observe_http(
                _route_template(scope), scope["method"], status, time.perf_counter() - started
            )


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE
