"""A direct route for the hot POST endpoints, in front of Starlette.

Starlette's middleware stack, exception wrappers and route matching (a regex per route)
cost about a tenth of a non-streaming request's CPU (bench/README.md). The inference
routes need none of it: one exact path, one method, and one error rendering. So this
ASGI app serves those requests itself with the same handler functions and the same error
rendering, and hands everything else (other methods, other paths, lifespan) to Starlette
unchanged, so 404/405s, the GET routes and the lifespan keep Starlette's behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from switchyard.errors import SwitchyardError
from switchyard.server.responses import JSONBytes, error_response

log = logging.getLogger("switchyard.server")

Handler = Callable[[Request], Awaitable[Response]]

_INTERNAL_ERROR = b'{"error":{"code":500,"message":"Internal Server Error"}}'


class _IndexedHeaders(Headers):
    """Headers whose ``get`` is one dict lookup.

    Starlette's ``Headers.get`` is ``Mapping.get``: a scan of the raw list per call, and a
    raised KeyError for every absent header. A chat request asks for eight headers, most of
    them absent (attribution, session, metadata), so that cost was measurable.
    """

    def __init__(self, scope: Scope) -> None:
        super().__init__(scope=scope)
        index: dict[str, str] = {}
        for key, value in reversed(self.raw):  # the first of repeated headers wins, as before
            index[key.decode("latin-1")] = value.decode("latin-1")
        self._index = index

    def get(self, key: str, default: Any = None) -> Any:
        return self._index.get(key.lower(), default)


class _FastRequest(Request):
    @property
    def headers(self) -> Headers:
        if not hasattr(self, "_headers"):
            self._headers = _IndexedHeaders(self.scope)
        return self._headers


class _RouteMarker:
    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


class FastPath:
    """Serves ``POST`` on the paths of ``routes`` directly; the rest goes to ``app``."""

    def __init__(self, app: Starlette, routes: Mapping[str, Handler]) -> None:
        self.app = app
        self._routes = dict(routes)
        # What Starlette's router would put in scope["route"]: the HTTP metrics label
        # requests by the matched route's template (observability middleware).
        self._markers = {path: _RouteMarker(path) for path in routes}

    @property
    def state(self) -> object:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._routes.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        # Handlers reach the process state through request.app, as under Starlette.
        scope["app"] = self.app
        scope["route"] = self._markers[scope["path"]]
        request = _FastRequest(scope, receive)
        try:
            response = await handler(request)
        except SwitchyardError as exc:
            response = error_response(exc)
        except Exception:
            # As Starlette's last-resort handler: the traceback to the log, no internals out.
            log.exception("unhandled error on POST %s", scope["path"])
            response = JSONBytes(_INTERNAL_ERROR, status_code=500)
        await response(scope, receive, send)
