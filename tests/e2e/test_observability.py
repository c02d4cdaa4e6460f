"""Observability on a real server: /metrics moves by exactly what calls used and cost, the
circuit-state gauge follows injected failures, request ids round-trip into JSON (or text)
log lines, secrets stay out of both, and generation spans reach an OTLP/HTTP receiver."""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import RunningServer, provider_config, start_server
from tests.simulators.openai_sim import SimulatorHandle

GPT = "openai/gpt-4o"
LOCAL = "local/smollm2-135m-instruct"
ONLY_OPENAI = {"only": ["openai"]}
ONLY_AZURE = {"only": ["azure"]}
HELLO = [{"role": "user", "content": "Hello"}]
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"

T = TypeVar("T")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# --- an OTLP/HTTP trace receiver ------------------------------------------------------------


class OtlpReceiver:
    """Accepts OTLP/HTTP protobuf exports on /v1/traces and keeps every span."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.resources: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver._keep(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _keep(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                self.resources.append(resource)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            {
                                "name": span.name,
                                "kind": span.kind,
                                "trace_id": span.trace_id.hex(),
                                "parent_span_id": span.parent_span_id.hex(),
                                "attributes": {a.key: _value(a.value) for a in span.attributes},
                                "status": span.status.code,
                            }
                        )

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


# --- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def observed(
    sim: SimulatorHandle, otlp: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """JSON logs, access log, metrics behind a management key, traces to the receiver, and
    breakers that open after two failures."""
    config = (
        'log_format = "json"\naccess_log = true\nmetrics = "management"\n'
        "breaker_failures = 2\nbreaker_cooldown = 600\n\n" + provider_config(sim.base_url)
    )
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    running = start_server(tmp_path_factory.mktemp("observed"), config, env=env)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def texty(
    sim: SimulatorHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """Text logs at debug level, access log, /metrics off, no local model."""
    config = (
        'log_format = "text"\nlog_level = "debug"\naccess_log = true\nmetrics = "off"\n\n'
        "[local]\nenabled = false\n\n" + provider_config(sim.base_url, azure=False)
    )
    running = start_server(tmp_path_factory.mktemp("texty"), config)
    yield running
    running.stop()


# --- helpers ---------------------------------------------------------------------------------


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def scrape(server: RunningServer) -> Samples:
    response = httpx.get(
        f"http://127.0.0.1:{server.port}/metrics", headers=auth(server.management_key), timeout=10
    )
    assert response.status_code == 200, response.text
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def chat(server: RunningServer, headers: dict[str, str] | None = None, **body: Any) -> Any:
    body.setdefault("messages", [{"role": "user", "content": "Hello"}])
    response = httpx.post(
        f"{server.base_url}/chat/completions",
        json=body,
        headers={**auth(server.api_key), **(headers or {})},
        timeout=60,
    )
    return response


def stream_usage(server: RunningServer, **body: Any) -> dict[str, Any]:
    body.setdefault("messages", [{"role": "user", "content": "Hello"}])
    usage: dict[str, Any] | None = None
    with httpx.stream(
        "POST",
        f"{server.base_url}/chat/completions",
        json={**body, "stream": True},
        headers=auth(server.api_key),
        timeout=60,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    usage = chunk["usage"]
    assert usage is not None
    return usage


def eventually(probe: Callable[[], T | None], timeout: float = 15) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("not observed in time")
        time.sleep(0.05)


def json_lines(server: RunningServer) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


# --- metrics ---------------------------------------------------------------------------------


def test_counters_move_by_the_exact_tokens_and_cost_of_the_calls(
    observed: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    fresh_sim.configure(cached_tokens=4)
    before = scrape(observed)
    plain = chat(observed, model=GPT, provider=ONLY_OPENAI)
    assert plain.status_code == 200, plain.text
    usages = [plain.json()["usage"], stream_usage(observed, model=GPT, provider=ONLY_OPENAI)]
    after = scrape(observed)

    served = {"model": GPT, "provider": "openai"}

    def moved(name: str, **labels: str) -> float:
        return get(after, name, **labels) - get(before, name, **labels)

    tokens = "switchyard_tokens_total"
    assert moved(tokens, **served, type="prompt") == sum(u["prompt_tokens"] for u in usages)
    assert moved(tokens, **served, type="completion") == sum(u["completion_tokens"] for u in usages)
    cached = sum(u["prompt_tokens_details"]["cached_tokens"] for u in usages)
    assert cached == 8 and moved(tokens, **served, type="cached") == cached
    cost = sum(u["cost"] for u in usages)
    assert cost > 0
    assert moved("switchyard_cost_usd_total", **served) == pytest.approx(cost, rel=1e-9)
    generations = "switchyard_generations_total"
    assert moved(generations, **served, finish_reason="stop") == 2
    assert moved("switchyard_time_to_first_token_seconds_count", **served) == 1  # the stream
    assert moved("switchyard_upstream_attempts_total", provider="openai") == 2
    route = {"route": "/api/v1/chat/completions", "method": "POST"}
    assert moved("switchyard_http_requests_total", **route, status="200") == 2
    assert moved("switchyard_http_request_duration_seconds_count", **route) == 2


def test_the_local_model_is_counted_too(observed: RunningServer) -> None:
    before = scrape(observed)
    response = chat(observed, model=LOCAL, max_tokens=2)
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    after = scrape(observed)
    served = {"model": LOCAL, "provider": "local"}
    for kind, field in (("prompt", "prompt_tokens"), ("completion", "completion_tokens")):
        labels = {**served, "type": kind}
        moved = get(after, "switchyard_tokens_total", **labels) - get(
            before, "switchyard_tokens_total", **labels
        )
        assert moved == usage[field] > 0
    finish = response.json()["choices"][0]["finish_reason"]
    labels = {**served, "finish_reason": finish}
    assert get(after, "switchyard_generations_total", **labels) == (
        get(before, "switchyard_generations_total", **labels) + 1
    )


def test_the_circuit_gauge_opens_after_injected_failures(
    observed: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    endpoint = {"endpoint": f"{GPT}@azure", "model": GPT, "provider": "azure"}
    before = scrape(observed)
    assert get(before, "switchyard_circuit_breaker_state", **endpoint, state="closed") == 1
    fresh_sim.add_faults({"kind": "status", "status": 503}, {"kind": "status", "status": 503})
    for _ in range(2):
        assert chat(observed, model=GPT, provider=ONLY_AZURE).status_code == 503
    after = scrape(observed)
    assert get(after, "switchyard_circuit_breaker_state", **endpoint, state="open") == 1
    assert get(after, "switchyard_circuit_breaker_state", **endpoint, state="closed") == 0
    errors = {"provider": "azure", "status": "503"}
    assert (
        get(after, "switchyard_upstream_errors_total", **errors)
        - get(before, "switchyard_upstream_errors_total", **errors)
        == 2
    )
    # The open breaker now refuses at once, without asking the provider.
    refused = chat(observed, model=GPT, provider=ONLY_AZURE)
    assert refused.status_code == 503
    assert len(fresh_sim.requests()) == 2


def test_metrics_need_the_operators_management_key_when_so_configured(
    observed: RunningServer, texty: RunningServer
) -> None:
    url = f"http://127.0.0.1:{observed.port}/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=auth(observed.api_key)).status_code == 403
    assert httpx.get(url, headers=auth(observed.management_key)).status_code == 200
    off = httpx.get(f"http://127.0.0.1:{texty.port}/metrics", headers=auth(texty.management_key))
    assert off.status_code == 404


# --- request ids and logs --------------------------------------------------------------------


def test_the_request_id_round_trips_into_json_log_lines(
    observed: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    request_id = f"e2e-{uuid.uuid4().hex[:12]}"
    response = chat(observed, {"X-Request-Id": request_id}, model=GPT, provider=ONLY_OPENAI)
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id
    generation_id = response.json()["id"]

    def line_for_generation() -> dict[str, Any] | None:
        for line in json_lines(observed):
            if line.get("generation_id") == generation_id:
                return line
        return None

    line = eventually(line_for_generation)
    assert line["request_id"] == request_id
    assert line["logger"] == "switchyard.generations" and line["model"] == GPT
    assert line["tokens_prompt"] == response.json()["usage"]["prompt_tokens"]
    access = [x for x in json_lines(observed) if x["logger"] == "uvicorn.access"]
    assert any(x.get("request_id") == request_id for x in access)

    # A stream settles in the task that pumps it: the id must have followed it there.
    streamed_id = f"e2e-stream-{uuid.uuid4().hex[:8]}"
    with httpx.stream(
        "POST",
        f"{observed.base_url}/chat/completions",
        json={"model": GPT, "stream": True, "provider": ONLY_OPENAI, "messages": HELLO},
        headers={**auth(observed.api_key), "X-Request-Id": streamed_id},
        timeout=30,
    ) as response:
        assert response.headers["x-request-id"] == streamed_id
        chunks = [json.loads(x[6:]) for x in response.iter_lines() if x.startswith("data: {")]

    def streamed_line() -> dict[str, Any] | None:
        for line in json_lines(observed):
            if line.get("generation_id") == chunks[0]["id"]:
                return line
        return None

    assert eventually(streamed_line)["request_id"] == streamed_id
    # Everything the logging system wrote is JSON; a fresh id for a request without one.
    for text in observed.log().splitlines():
        if " INFO " in text or " WARNING " in text:
            raise AssertionError(f"a text log line in JSON mode: {text}")
    bare = httpx.get(f"{observed.base_url}/models")
    assert len(bare.headers["x-request-id"]) == 32


def test_text_log_lines_carry_the_request_id(texty: RunningServer) -> None:
    request_id = f"txt-{uuid.uuid4().hex[:12]}"
    response = httpx.get(f"{texty.base_url}/models", headers={"X-Request-Id": request_id})
    assert response.headers["x-request-id"] == request_id
    eventually(lambda: True if f"[{request_id}]" in texty.log() else None)


def test_secrets_never_reach_the_logs_in_either_format(
    observed: RunningServer, texty: RunningServer, fresh_sim: SimulatorHandle
) -> None:
    for server in (observed, texty):
        # A client that puts keys where they do not belong: a query string, a path.
        httpx.get(f"{server.base_url}/models?api_key={server.api_key}")
        httpx.get(f"{server.base_url}/keys/{server.management_key}")
        wrong = auth("sk-sy-v1-abcdef12")
        httpx.post(f"{server.base_url}/chat/completions", json={}, headers=wrong)
        fresh_sim.add_faults({"kind": "status", "status": 401})
        chat(server, model=GPT, provider=ONLY_OPENAI)
        fresh_sim.add_faults({"kind": "disconnect_mid_stream", "after_chunks": 1})
        with httpx.stream(
            "POST",
            f"{server.base_url}/chat/completions",
            json={
                "model": GPT,
                "stream": True,
                "provider": ONLY_OPENAI,
                "messages": [{"role": "user", "content": "Hello"}],
            },
            headers=auth(server.api_key),
            timeout=30,
        ) as response:
            for _ in response.iter_lines():
                pass
    for server in (observed, texty):
        log = server.log()
        for secret in (server.api_key, server.management_key, "sk-sim-test", "sk-sy-v1-abcdef12"):
            assert secret not in log
        assert "Bearer sk" not in log
    assert "api_key=***" in observed.log() and "api_key=***" in texty.log()


# --- traces ----------------------------------------------------------------------------------


def test_generation_spans_reach_the_collector_with_genai_attributes(
    observed: RunningServer, otlp: OtlpReceiver, fresh_sim: SimulatorHandle
) -> None:
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    response = chat(observed, {"traceparent": traceparent}, model=GPT, provider=ONLY_OPENAI)
    assert response.status_code == 200
    body = response.json()

    def our_span() -> dict[str, Any] | None:
        for span in list(otlp.spans):
            if span["attributes"].get("gen_ai.response.id") == body["id"]:
                return span
        return None

    span = eventually(our_span)
    attrs = span["attributes"]
    assert span["name"] == f"chat {GPT}"
    assert span["kind"] == 3  # SPAN_KIND_CLIENT
    assert span["trace_id"] == TRACE_ID and span["parent_span_id"] == PARENT_ID
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == GPT
    assert attrs["gen_ai.response.model"] == GPT
    assert attrs["gen_ai.usage.input_tokens"] == body["usage"]["prompt_tokens"]
    assert attrs["gen_ai.usage.output_tokens"] == body["usage"]["completion_tokens"]
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["switchyard.request_id"] == response.headers["x-request-id"]
    assert any(r.get("service.name") == "switchyard" for r in otlp.resources)


def test_tracing_is_on_only_where_an_endpoint_is_configured(
    observed: RunningServer, texty: RunningServer
) -> None:
    assert "tracing: generation spans exported to" in observed.log()
    assert "tracing:" not in texty.log()
