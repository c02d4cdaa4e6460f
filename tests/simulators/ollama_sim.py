"""Deterministic simulator of Ollama's native chat API (``POST /api/chat``).

Speaks the protocol of https://github.com/ollama/ollama/blob/main/docs/api.md: a JSON object
per reply, or newline-delimited JSON objects when streaming (the default), with usage as
``prompt_eval_count`` / ``eval_count`` on the final ``done`` object and errors as
``{"error": "..."}``. Requests are checked against the ``ollama`` package's request types.

Control API under ``/__sim``: ``script`` (the conformance contract's scripted reply),
``requests`` (recorded bodies), ``faults`` (the OpenAI simulator's :class:`Fault` kinds:
latency, status, timeout, reset, disconnect_mid_stream, slow_tokens) and ``reset``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import datetime as dt
import socket
import struct
from collections.abc import Iterator
from typing import Any, TypeVar

import msgspec
import ollama
import pydantic
from aiohttp import web
from ollama import _types as ollama_types

from tests.conformance.contract import Script, ScriptedToolCall, ScriptedUsage
from tests.simulators.openai_sim import Fault, example_from_schema, tokenize
from tests.simulators.threaded import SimulatorThread

DEFAULT_REPLY = "Hello from the simulator."
MAX_RECORDED_REQUESTS = 1000

JSON = dict[str, Any]
_T = TypeVar("_T")
_encode = msgspec.json.encode


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def _pieces(text: str, at_least: int = 2) -> list[str]:
    """Split into the simulator's tokens, and into at least ``at_least`` pieces if possible."""
    tokens = tokenize(text)
    if len(tokens) >= at_least or len(text) < at_least:
        return tokens
    middle = len(text) // 2
    return [text[:middle], text[middle:]]


def _prompt_tokens(messages: list[Any]) -> int:
    chars = sum(len(m.get("content") or "") for m in messages if isinstance(m, dict))
    return max(1, chars // 4 + 3 * len(messages))


def _default_script(body: JSON) -> Script:
    """Without a script: call the first tool when tools are given, else the fixed reply."""
    tools = [t.get("function") or {} for t in body.get("tools") or () if isinstance(t, dict)]
    prompt = _prompt_tokens(body.get("messages") or [])
    if tools:
        function = tools[0]
        arguments = example_from_schema(function.get("parameters") or {"type": "object"})
        call = ScriptedToolCall(id="", name=str(function.get("name")), arguments=arguments or {})
        return Script(tool_calls=[call], finish_reason="tool_calls", usage=_usage(prompt, 5))
    return Script(text=DEFAULT_REPLY, usage=_usage(prompt, len(tokenize(DEFAULT_REPLY))))


def _usage(prompt: int, completion: int) -> ScriptedUsage:
    return ScriptedUsage(prompt_tokens=prompt, completion_tokens=completion)


def _done_reason(script: Script) -> str:
    # Ollama reports "length" when num_predict cut the reply and "stop" otherwise; a tool call
    # ends with "stop" too (the adapter derives tool_calls from the calls themselves).
    return "length" if script.finish_reason == "length" else "stop"


def _final(model: str, script: Script, content: str = "") -> JSON:
    return {
        "model": model,
        "created_at": _now(),
        "message": {"role": "assistant", "content": content},
        "done": True,
        "done_reason": _done_reason(script),
        "total_duration": 5_000_000,
        "load_duration": 1_000_000,
        "prompt_eval_count": script.usage.prompt_tokens,
        "prompt_eval_duration": 1_000_000,
        "eval_count": script.usage.completion_tokens,
        "eval_duration": 3_000_000,
    }


def _calls(script: Script) -> list[JSON]:
    return [{"function": {"name": c.name, "arguments": c.arguments}} for c in script.tool_calls]


def reply_body(model: str, script: Script) -> JSON:
    """The whole reply of a non-streamed request."""
    body = _final(model, script, script.text or "")
    message = body["message"]
    if script.reasoning:
        message["thinking"] = script.reasoning
    if script.tool_calls:
        message["tool_calls"] = _calls(script)
    return body


def stream_lines(model: str, script: Script) -> Iterator[JSON]:
    """The objects of a streamed reply: thinking, then text, then tool calls, then done."""

    def line(**message: Any) -> JSON:
        return {
            "model": model,
            "created_at": _now(),
            "message": {"role": "assistant", "content": "", **message},
            "done": False,
        }

    for piece in _pieces(script.reasoning or ""):
        yield line(thinking=piece)
    for piece in _pieces(script.text or ""):
        yield line(content=piece)
    # Ollama sends each tool call whole, arguments as an object: nothing to reassemble.
    for call in _calls(script):
        yield line(tool_calls=[call])
    yield _final(model, script)


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        body=_encode({"error": message}), status=status, content_type="application/json"
    )


def _abort(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.StreamResponse()


class _FaultsBody(msgspec.Struct, forbid_unknown_fields=True):
    faults: list[Fault]
    sticky: bool = False


class OllamaSimulator:
    def __init__(self) -> None:
        self.script: Script | None = None
        self._faults: collections.deque[Fault] = collections.deque()
        self._sticky: Fault | None = None
        self._requests: collections.deque[JSON] = collections.deque(maxlen=MAX_RECORDED_REQUESTS)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024**2)
        app.add_routes(
            [
                web.post("/api/chat", self._chat),
                web.get("/api/version", self._version),
                web.post("/__sim/script", self._post_script),
                web.delete("/__sim/script", self._delete_script),
                web.get("/__sim/requests", self._get_requests),
                web.post("/__sim/faults", self._post_faults),
                web.delete("/__sim/faults", self._delete_faults),
                web.post("/__sim/reset", self._post_reset),
            ]
        )
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1
        )
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- control state -------------------------------------------------------------------

    def add_faults(self, faults: list[Fault], sticky: bool = False) -> None:
        if sticky and faults:
            self._faults.extend(faults[:-1])
            self._sticky = faults[-1]
        else:
            self._faults.extend(faults)

    def requests(self) -> list[JSON]:
        return list(self._requests)

    def reset(self) -> None:
        self.script = None
        self._faults.clear()
        self._sticky = None
        self._requests.clear()

    def _next_fault(self) -> Fault | None:
        return self._faults.popleft() if self._faults else self._sticky

    # -- protocol ------------------------------------------------------------------------

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.12.0"})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            body = None
        self._requests.append(
            {"method": request.method, "path": request.path, "headers": dict(request.headers)}
            | {"body": body}
        )
        if not isinstance(body, dict):
            return _error(400, "invalid character in request body")
        if not body.get("model"):
            return _error(400, "model is required")
        try:
            ollama_types.ChatRequest.model_validate(body)
            for message in body.get("messages") or ():
                # The client's Image type takes file paths too; on the wire it is base64.
                images = message.pop("images", None) if isinstance(message, dict) else None
                ollama.Message.model_validate(message)
                if images is not None:
                    message["images"] = images
                    for image in images:
                        base64.b64decode(image, validate=True)
        except pydantic.ValidationError as exc:
            return _error(400, f"invalid request: {exc.errors()[0]['msg']}")
        except (binascii.Error, TypeError, ValueError):
            return _error(400, "illegal base64 data in images")
        fault = self._next_fault()
        if fault is not None:
            if fault.kind == "latency":
                await asyncio.sleep(fault.ms / 1000)
            elif fault.kind == "status":
                response = _error(fault.status, f"simulated HTTP {fault.status}")
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = f"{fault.retry_after:g}"
                return response
            elif fault.kind == "timeout":
                await asyncio.get_running_loop().create_future()
            elif fault.kind == "reset":
                return _abort(request)
        script = self.script or _default_script(body)
        model = str(body["model"])
        if body.get("stream", True) is False:
            payload = _encode(reply_body(model, script))
            if fault is not None and fault.kind == "disconnect_mid_stream":
                response = web.StreamResponse()
                response.content_type = "application/json"
                response.content_length = len(payload)
                await response.prepare(request)
                await response.write(payload[: len(payload) // 2])
                return _abort(request)
            return web.Response(body=payload, content_type="application/json", charset="utf-8")
        return await self._stream(request, model, script, fault)

    async def _stream(
        self, request: web.Request, model: str, script: Script, fault: Fault | None
    ) -> web.StreamResponse:
        delay = fault.ms / 1000 if fault is not None and fault.kind == "slow_tokens" else 0.0
        cut = fault.after_chunks if fault and fault.kind == "disconnect_mid_stream" else -1
        response = web.StreamResponse()
        response.content_type = "application/x-ndjson"
        await response.prepare(request)
        for sent, line in enumerate(stream_lines(model, script)):
            if sent == cut:
                # Let the lines already written reach the client first: a reset discards
                # whatever the peer has not read yet, which would make the cut point random.
                await asyncio.sleep(0.05)
                return _abort(request)
            if delay and sent:
                await asyncio.sleep(delay)
            await response.write(_encode(line) + b"\n")
        return response

    # -- control routes ------------------------------------------------------------------

    async def _post_script(self, request: web.Request) -> web.Response:
        try:
            self.script = msgspec.json.decode(await request.read(), type=Script)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, str(exc))
        return web.json_response({"script": msgspec.to_builtins(self.script)})

    async def _delete_script(self, request: web.Request) -> web.Response:
        self.script = None
        return web.json_response({"script": None})

    async def _get_requests(self, request: web.Request) -> web.Response:
        return web.Response(body=_encode(self.requests()), content_type="application/json")

    async def _post_faults(self, request: web.Request) -> web.Response:
        try:
            parsed = msgspec.json.decode(await request.read(), type=_FaultsBody)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, str(exc))
        self.add_faults(parsed.faults, parsed.sticky)
        return web.json_response({"queued": len(self._faults)})

    async def _delete_faults(self, request: web.Request) -> web.Response:
        self._faults.clear()
        self._sticky = None
        return web.json_response({"queued": 0})

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})


class OllamaSimulatorHandle(SimulatorThread[OllamaSimulator]):
    """The simulator's controls, callable from the tests' thread."""

    @property
    def base_url(self) -> str:
        return self.simulator.base_url

    def add_faults(self, *faults: dict[str, Any], sticky: bool = False) -> None:
        parsed = [msgspec.convert(f, Fault) for f in faults]
        self._call(lambda: self.simulator.add_faults(parsed, sticky))

    def set_script(self, script: Script | None) -> None:
        def apply() -> None:
            self.simulator.script = script

        self._call(apply)

    def requests(self) -> list[JSON]:
        return self._call(self.simulator.requests)

    def reset(self) -> None:
        self._call(self.simulator.reset)


def run_in_thread() -> OllamaSimulatorHandle:
    simulator = OllamaSimulator()
    return OllamaSimulatorHandle(simulator, simulator.start(), "ollama-sim")
