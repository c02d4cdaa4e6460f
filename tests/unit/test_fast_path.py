"""FastPath: hot POST routes served directly with our error shapes; the rest to Starlette."""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from switchyard.errors import InvalidRequest
from switchyard.server.fast_path import FastPath
from switchyard.server.responses import JSONBytes

PATH = "/api/v1/chat/completions"


async def _echo(request: Request) -> Response:
    body = await request.body()
    # The handler sees the Starlette app (for its state) and the request as sent.
    assert isinstance(request.app, Starlette)
    return JSONBytes(
        json.dumps({"got": body.decode(), "auth": request.headers.get("authorization")}).encode(),
        headers={"X-Generation-Id": "gen-1"},
    )


async def _invalid(request: Request) -> Response:
    raise InvalidRequest("model is required", field="model")


async def _broken(request: Request) -> Response:
    raise RuntimeError("secret internals")


async def _slow_route(request: Request) -> Response:
    return JSONBytes(b'{"via":"starlette"}')


def _app(handler: Any) -> FastPath:
    inner = Starlette(routes=[Route(PATH, _slow_route, methods=["GET"])])
    return FastPath(inner, {PATH: handler})


async def _call(
    app: FastPath,
    method: str,
    path: str,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> dict[str, Any]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 5000),
        "headers": headers
        or [(b"authorization", b"Bearer sk-x"), (b"content-type", b"application/json")],
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return {
        "status": start["status"],
        "headers": dict(start["headers"]),
        "body": b"".join(m.get("body", b"") for m in sent[1:]),
    }


async def test_post_on_a_hot_path_reaches_the_handler_with_body_and_headers() -> None:
    out = await _call(_app(_echo), "POST", PATH, b'{"a":1}')
    assert out["status"] == 200
    assert json.loads(out["body"]) == {"got": '{"a":1}', "auth": "Bearer sk-x"}
    assert out["headers"][b"x-generation-id"] == b"gen-1"


async def test_other_methods_and_paths_go_to_starlette() -> None:
    app = _app(_echo)
    got = await _call(app, "GET", PATH)
    assert (got["status"], got["body"]) == (200, b'{"via":"starlette"}')
    assert (await _call(app, "PUT", PATH))["status"] == 405
    assert (await _call(app, "POST", PATH + "/x"))["status"] == 404


async def test_a_switchyard_error_is_rendered_in_the_api_error_shape() -> None:
    out = await _call(_app(_invalid), "POST", PATH, b"{}")
    assert out["status"] == 400
    error = json.loads(out["body"])["error"]
    assert error["code"] == 400
    assert "model is required" in error["message"]


async def test_an_unexpected_error_is_a_500_without_internals() -> None:
    out = await _call(_app(_broken), "POST", PATH, b"{}")
    assert out["status"] == 500
    assert b"secret" not in out["body"]
    assert json.loads(out["body"]) == {"error": {"code": 500, "message": "Internal Server Error"}}


async def test_header_lookups_match_starlette() -> None:
    seen: dict[str, object] = {}

    async def look(request: Request) -> Response:
        h = request.headers
        seen.update(
            auth=h.get("Authorization"),
            title=h.get("x-title"),
            missing=h.get("x-session-id"),
            fallback=h.get("x-session-id", "none"),
            all_titles=h.getlist("x-title"),
        )
        return JSONBytes(b"{}")

    raw = [(b"authorization", b"Bearer a"), (b"x-title", b"first"), (b"x-title", b"second")]
    await _call(_app(look), "POST", PATH, b"{}", raw)
    assert seen == {
        "auth": "Bearer a",
        "title": "first",  # the first of repeated headers, as Starlette's Headers.get
        "missing": None,
        "fallback": "none",
        "all_titles": ["first", "second"],
    }
