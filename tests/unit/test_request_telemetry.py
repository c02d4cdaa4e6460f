"""The request middleware in-process: request ids in, out and in the logs; HTTP metrics by
route template; a failure still counted and labelled."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from switchyard.observability import Metrics, Telemetry
from switchyard.observability.logs import Redactor, build_handler
from switchyard.observability.request_context import current_request_id
from switchyard.server.app import _unexpected
from switchyard.server.middleware import RequestTelemetry

log = logging.getLogger("test.request_telemetry")


async def item(request: Request) -> Response:
    log.info("looking up %s", request.path_params["item_id"])
    return PlainTextResponse(f"{current_request_id()}")


async def broken(request: Request) -> Response:
    raise RuntimeError("a bug")


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = build_handler(stream, "json", Redactor())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    server = logging.getLogger("switchyard.server")
    server.addHandler(handler)
    yield stream
    log.removeHandler(handler)
    server.removeHandler(handler)


@pytest.fixture
def client(metrics: Metrics) -> httpx.AsyncClient:
    # Arranged as create_app arranges it: the telemetry outside the Starlette app.
    app = RequestTelemetry(
        Starlette(
            routes=[Route("/items/{item_id}", item), Route("/broken", broken)],
            exception_handlers={Exception: _unexpected},
        ),
        telemetry=Telemetry(metrics),
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def count(metrics: Metrics, route: str, method: str, status: str) -> float:
    labels = {"route": route, "method": method, "status": status}
    return metrics.registry.get_sample_value("switchyard_http_requests_total", labels) or 0.0


async def test_a_sane_request_id_is_kept_returned_and_logged(
    client: httpx.AsyncClient, logs: io.StringIO
) -> None:
    response = await client.get("/items/7", headers={"X-Request-Id": "trace-me-1"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-me-1"
    assert response.text == "trace-me-1"  # what handlers (and log lines) see
    (line,) = [json.loads(x) for x in logs.getvalue().splitlines()]
    assert line["message"] == "looking up 7" and line["request_id"] == "trace-me-1"
    assert current_request_id() is None  # nothing leaks past the request


async def test_without_a_usable_id_each_request_gets_a_fresh_one(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/items/1")
    second = await client.get("/items/1", headers={"X-Request-Id": "no spaces allowed"})
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)
    assert "no spaces allowed" not in ids


async def test_requests_are_counted_by_route_template_not_path(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    for item_id in ("1", "2", "3"):
        await client.get(f"/items/{item_id}")
    await client.get("/nowhere/at/all")
    await client.post("/items/1")
    assert count(metrics, "/items/{item_id}", "GET", "200") == 3
    assert count(metrics, "unmatched", "GET", "404") == 1
    assert count(metrics, "/items/{item_id}", "POST", "405") == 1
    labels = {"route": "/items/{item_id}", "method": "GET"}
    duration = "switchyard_http_request_duration_seconds_count"
    assert metrics.registry.get_sample_value(duration, labels) == 3
    assert metrics.registry.get_sample_value("switchyard_http_requests_in_progress") == 0


async def test_an_unhandled_error_is_a_500_with_the_id_counted_and_logged(
    client: httpx.AsyncClient, metrics: Metrics, logs: io.StringIO
) -> None:
    response = await client.get("/broken", headers={"X-Request-Id": "oops-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "oops-1"
    assert count(metrics, "/broken", "GET", "500") == 1
    lines = [json.loads(x) for x in logs.getvalue().splitlines()]
    (failure,) = [line for line in lines if line["logger"] == "switchyard.server"]
    assert failure["request_id"] == "oops-1" and "a bug" in failure["exception"]
