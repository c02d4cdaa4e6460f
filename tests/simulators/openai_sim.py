"""Deterministic simulator of the OpenAI Chat Completions HTTP protocol.

Stands in for api.openai.com (``POST /v1/chat/completions``) and Azure OpenAI
(``POST /openai/deployments/{deployment}/chat/completions``) in tests and
benchmarks. Replies are fixed text (or tool calls / schema-conforming JSON when
the request asks for them), so tests can assert exact content, and faults
(latency, error statuses, hangs, connection resets, broken streams) can be
scripted through a JSON control API under ``/__sim``.

Run standalone with ``python -m tests.simulators.openai_sim --port 9100`` or
in-process with :class:`OpenAISimulator` / :func:`run_in_thread`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import signal
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from aiohttp import web

from tests.conformance.contract import Script, ScriptedUsage
from tests.simulators.openai_embeddings_sim import EmbeddingsSimulator
from tests.simulators.threaded import SimulatorThread

DEFAULT_API_KEY = "sk-sim-test"
DEFAULT_REPLY = "Hello from the simulator."
DEFAULT_MODELS = ("gpt-4o", "gpt-4o-mini")
SYSTEM_FINGERPRINT = "fp_5f2e1d0c9b"
MAX_RECORDED_REQUESTS = 1000

_T = TypeVar("_T")
JSON = dict[str, Any]

_encode = msgspec.json.encode
_decode = msgspec.json.decode

# Splits text into "tokens": a word or punctuation run with its leading
# whitespace, plus trailing whitespace, so that "".join(tokens) == text.
_TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s]+)|\s+")
_API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
# Azure annotates prompts and choices with content-filter verdicts.
_FILTER_VERDICTS: JSON = {
    category: {"filtered": False, "severity": "safe"}
    for category in ("hate", "self_harm", "sexual", "violence")
}
_SSE_DONE = b"data: [DONE]\n\n"


class Fault(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One injected failure of a chat request, by ``kind``:

    - ``latency``: wait ``ms`` before responding (before any header is sent);
    - ``status``: answer ``status`` with the provider's error body, plus a
      ``Retry-After`` header when ``retry_after`` is given;
    - ``timeout``: never answer; hold the connection until the client leaves;
    - ``reset``: close the connection with a TCP RST and no response;
    - ``disconnect_mid_stream``: send ``after_chunks`` SSE frames, then reset
      (non-streaming requests get the headers and half the body);
    - ``slow_tokens``: wait ``ms`` before every stream frame after the first
      (non-streaming: ``ms`` per reply token before responding).
    """

    kind: Literal["latency", "status", "timeout", "reset", "disconnect_mid_stream", "slow_tokens"]
    ms: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    status: Annotated[int, msgspec.Meta(ge=400, le=599)] = 500
    retry_after: Annotated[float, msgspec.Meta(ge=0)] | None = None
    after_chunks: Annotated[int, msgspec.Meta(ge=0)] = 0


class SimConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Behaviour options settable through ``POST /__sim/config``."""

    reply: Annotated[str, msgspec.Meta(min_length=1)] = DEFAULT_REPLY
    # Number of reply tokens (= streamed content chunks); the reply text is
    # repeated or cut to fit. None keeps the reply's natural length.
    chunks: Annotated[int, msgspec.Meta(ge=1)] | None = None
    # Emit Azure's prompt_filter_results / content_filter_results fields and its
    # leading choice-less stream chunk on the Azure route, like real Azure does.
    azure_content_filter: bool = False
    # Prompt tokens reported as served from the provider's prompt cache (capped at the
    # prompt's size), as OpenAI reports automatic prompt caching.
    cached_tokens: Annotated[int, msgspec.Meta(ge=0)] = 0
    models: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_MODELS))


class _FaultsBody(msgspec.Struct, forbid_unknown_fields=True):
    faults: list[Fault]
    sticky: bool = False


def tokenize(text: str) -> list[str]:
    """Split ``text`` into the simulator's tokens (lossless)."""
    return _TOKEN_RE.findall(text)


def _reply_tokens(config: SimConfig) -> list[str]:
    base = tokenize(config.reply)
    if config.chunks is None:
        return base
    # Repetitions need a separator so that the words do not run together.
    repeat = base if base[0][:1].isspace() else [" " + base[0], *base[1:]]
    tokens = list(base)
    while len(tokens) < config.chunks:
        tokens.extend(repeat)
    return tokens[: config.chunks]


def example_from_schema(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """Build a small JSON value conforming to a JSON schema.

    Objects get their required properties only; strings are "x", numbers 1,
    booleans true, arrays their minimum number of items.
    """
    if not isinstance(schema, dict) or depth > 32:
        return None
    root = schema if root is None else root
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return example_from_schema(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return example_from_schema(options[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        properties = schema.get("properties") or {}
        return {
            name: example_from_schema(properties.get(name, {}), root, depth + 1)
            for name in schema.get("required") or ()
        }
    if kind == "array":
        item = example_from_schema(schema.get("items", {}), root, depth + 1)
        return [item] * int(schema.get("minItems", 0))
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "x" * max(1, int(schema.get("minLength", 1)))


def _prompt_tokens(messages: list[Any]) -> int:
    chars = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(
                len(part["text"])
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return max(1, chars // 4 + 3 * len(messages))


def _random_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


@dataclass(slots=True)
class _ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class _Reply:
    """What the simulated model answers: content tokens or tool calls."""

    pieces: list[str] = field(default_factory=list)
    tool_calls: list[_ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"
    # A conformance script fixes the usage figures instead of counting.
    usage: ScriptedUsage | None = None

    @property
    def completion_tokens(self) -> int:
        if self.usage is not None:
            return self.usage.completion_tokens
        if self.tool_calls:
            return sum(len(tokenize(call.arguments)) for call in self.tool_calls)
        return len(self.pieces)


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def _function_tools(body: JSON) -> list[JSON]:
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    return [
        tool["function"]
        for tool in tools
        if isinstance(tool, dict)
        and tool.get("type") == "function"
        and isinstance(tool.get("function"), dict)
        and isinstance(tool["function"].get("name"), str)
    ]


def _positive_int(body: JSON, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _BadRequest(
            f"Invalid '{name}': expected an integer greater than or equal to 1.",
            name,
            "invalid_value",
        )
    return value


def _top_logprobs(body: JSON) -> int | None:
    """How many alternatives per token to report; None without ``logprobs``."""
    if body.get("logprobs") is not True:
        return None
    top = body.get("top_logprobs")
    if top is None:
        return 0
    if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= 20:
        raise _BadRequest(
            "Invalid 'top_logprobs': expected an integer between 0 and 20.",
            "top_logprobs",
            "invalid_value",
        )
    return top


def _build_reply(body: JSON, tokens: list[str]) -> _Reply:
    tools = _function_tools(body)
    tool_choice = body.get("tool_choice")
    if tools and tool_choice != "none":
        if isinstance(tool_choice, dict):
            wanted = (tool_choice.get("function") or {}).get("name")
            chosen = [tool for tool in tools if tool["name"] == wanted]
            if not chosen:
                raise _BadRequest(
                    f"Invalid 'tool_choice': function '{wanted}' is not in 'tools'.",
                    "tool_choice",
                    "invalid_value",
                )
        elif body.get("parallel_tool_calls") is not False:
            chosen = tools[:2]
        else:
            chosen = tools[:1]
        calls = [
            _ToolCall(
                id=_random_id("call_"),
                name=tool["name"],
                arguments=_encode(
                    example_from_schema(tool.get("parameters") or {"type": "object"})
                ).decode(),
            )
            for tool in chosen
        ]
        return _Reply(tool_calls=calls, finish_reason="tool_calls")

    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        response_format = {}
    kind = response_format.get("type")
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        tokens = tokenize(_encode(example_from_schema(schema)).decode())
    elif kind == "json_object":
        tokens = tokenize('{"result": "ok"}')

    reply = _Reply(pieces=list(tokens))
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    text = "".join(reply.pieces)
    cuts = [i for s in stops if isinstance(s, str) and s and (i := text.find(s)) >= 0]
    if cuts:
        reply.pieces = _cut(reply.pieces, min(cuts))
    limit = _positive_int(body, "max_completion_tokens") or _positive_int(body, "max_tokens")
    if limit is not None and len(reply.pieces) > limit:
        reply.pieces = reply.pieces[:limit]
        reply.finish_reason = "length"
    return reply


def _cut(pieces: list[str], end: int) -> list[str]:
    """Keep the first ``end`` characters of the concatenated pieces."""
    kept: list[str] = []
    offset = 0
    for piece in pieces:
        if offset + len(piece) >= end:
            if end > offset:
                kept.append(piece[: end - offset])
            break
        kept.append(piece)
        offset += len(piece)
    return kept


def _logprobs(pieces: list[str], top: int) -> list[JSON]:
    """Log-probabilities for ``pieces``: the chosen token first among ``top``."""
    entries = []
    for piece in pieces:
        encoded = list(piece.encode())
        candidates: list[JSON] = [{"token": piece, "logprob": -0.1, "bytes": encoded}]
        candidates.extend(
            {"token": f"<alt{j}>", "logprob": -0.1 - j, "bytes": list(f"<alt{j}>".encode())}
            for j in range(1, top)
        )
        entries.append(
            {"token": piece, "logprob": -0.1, "bytes": encoded, "top_logprobs": candidates[:top]}
        )
    return entries


def _usage(
    prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, reasoning_tokens: int = 0
) -> JSON:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {
            "cached_tokens": min(cached_tokens, prompt_tokens),
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


@dataclass(slots=True)
class _Exchange:
    """Per-request facts needed to render a completion."""

    model: str
    reply: _Reply
    prompt_tokens: int
    top_logprobs: int | None  # None when logprobs were not requested
    include_usage: bool
    obfuscation: bool
    content_filter: bool
    cached_tokens: int = 0
    id: str = field(default_factory=lambda: _random_id("chatcmpl-"))
    created: int = field(default_factory=lambda: int(time.time()))


def _exchange_usage(ex: _Exchange) -> JSON:
    scripted = ex.reply.usage
    if scripted is not None:
        return _usage(
            scripted.prompt_tokens,
            scripted.completion_tokens,
            scripted.cached_tokens,
            scripted.reasoning_tokens,
        )
    return _usage(ex.prompt_tokens, ex.reply.completion_tokens, ex.cached_tokens)


def _scripted_reply(script: Script) -> _Reply:
    """A conformance script as this protocol's reply (OpenAI chat has no reasoning output)."""
    return _Reply(
        pieces=tokenize(script.text) if script.text else [],
        tool_calls=[
            _ToolCall(id=call.id, name=call.name, arguments=_encode(call.arguments).decode())
            for call in script.tool_calls
        ],
        finish_reason=script.finish_reason,
        usage=script.usage,
    )


def _completion_body(ex: _Exchange) -> JSON:
    reply = ex.reply
    message: JSON = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.tool_calls
        ]
    if reply.pieces or not reply.tool_calls:
        message["content"] = "".join(reply.pieces)
    logprobs = None
    if ex.top_logprobs is not None:
        content = None if reply.tool_calls else _logprobs(reply.pieces, ex.top_logprobs)
        logprobs = {"content": content, "refusal": None}
    choice: JSON = {
        "index": 0,
        "message": message,
        "logprobs": logprobs,
        "finish_reason": reply.finish_reason,
    }
    body: JSON = {
        "id": ex.id,
        "object": "chat.completion",
        "created": ex.created,
        "model": ex.model,
        "choices": [choice],
        "usage": _exchange_usage(ex),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if ex.content_filter:
        choice["content_filter_results"] = _FILTER_VERDICTS
        body["prompt_filter_results"] = [
            {"prompt_index": 0, "content_filter_results": _FILTER_VERDICTS}
        ]
    return body


def _stream_frames(ex: _Exchange) -> Iterator[bytes]:
    """Yield the SSE frames of a streamed completion, ``[DONE]`` included."""
    head: JSON = {
        "id": ex.id,
        "object": "chat.completion.chunk",
        "created": ex.created,
        "model": ex.model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    tail: JSON = {}
    if ex.include_usage:
        # OpenAI sends "usage": null on every chunk but the final usage chunk.
        tail["usage"] = None
    if ex.obfuscation:
        tail["obfuscation"] = "sim"

    def frame(delta: JSON, finish_reason: str | None = None, logprobs: JSON | None = None) -> bytes:
        choice: JSON = {
            "index": 0,
            "delta": delta,
            "logprobs": logprobs,
            "finish_reason": finish_reason,
        }
        if ex.content_filter:
            choice["content_filter_results"] = {} if "role" in delta else _FILTER_VERDICTS
        return b"data: " + _encode({**head, "choices": [choice], **tail}) + b"\n\n"

    if ex.content_filter:
        # Azure opens with a choice-less chunk carrying the prompt verdicts.
        first = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [
                {"prompt_index": 0, "content_filter_results": _FILTER_VERDICTS}
            ],
        }
        yield b"data: " + _encode(first) + b"\n\n"

    reply = ex.reply
    if reply.pieces or not reply.tool_calls:
        yield frame({"role": "assistant", "content": "", "refusal": None})
        top = ex.top_logprobs
        for piece in reply.pieces:
            logprobs = (
                None if top is None else {"content": _logprobs([piece], top), "refusal": None}
            )
            yield frame({"content": piece}, logprobs=logprobs)
    if reply.tool_calls:
        for index, call in enumerate(reply.tool_calls):
            announce = {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            if index == 0 and not reply.pieces:
                yield frame(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [announce],
                        "refusal": None,
                    }
                )
            else:
                yield frame({"tool_calls": [announce]})
            for fragment in tokenize(call.arguments):
                yield frame({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    yield frame({}, reply.finish_reason)
    if ex.include_usage:
        usage = {
            **head,
            "choices": [],
            "usage": _exchange_usage(ex),
        }
        if ex.obfuscation:
            usage["obfuscation"] = "sim"
        yield b"data: " + _encode(usage) + b"\n\n"
    yield _SSE_DONE


def _json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_encode(body), status=status, headers=headers, content_type="application/json"
    )


def _openai_error(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    code: str | int | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error = {"message": message, "type": type_, "param": param, "code": code}
    return _json_response({"error": error}, status, headers)


def _azure_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return _json_response({"error": {"code": code, "message": message}}, status, headers)


def _fault_status_response(fault: Fault, azure: bool, api_version: str) -> web.Response:
    status = fault.status
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    wait = f"{fault.retry_after:g}" if fault.retry_after is not None else "1"
    if azure:
        if status == 429:
            message = (
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                f"version {api_version} have exceeded token rate limit of your current "
                f"OpenAI S0 pricing tier. Please retry after {wait} seconds."
            )
            return _azure_error(status, "429", message, headers)
        if status >= 500:
            message = (
                "The service is temporarily unable to process your request. Please try again later."
            )
            return _azure_error(status, "InternalServerError", message, headers)
        return _azure_error(status, str(status), f"Simulated HTTP {status}.", headers)
    if status == 429:
        message = f"Rate limit reached for requests. Please try again in {wait}s."
        return _openai_error(status, message, "requests", "rate_limit_exceeded", headers=headers)
    if status == 500:
        message = "The server had an error while processing your request. Sorry about that!"
        return _openai_error(status, message, "server_error", headers=headers)
    if status == 502:
        return _openai_error(status, "Bad gateway.", "cf_bad_gateway", 502, headers=headers)
    if status == 503:
        message = "The engine is currently overloaded, please try again later"
        return _openai_error(status, message, "server_error", headers=headers)
    type_ = "server_error" if status >= 500 else "invalid_request_error"
    return _openai_error(status, f"Simulated HTTP {status}.", type_, headers=headers)


def _abort(request: web.Request) -> web.StreamResponse:
    """Drop the connection with a TCP RST, sending nothing further."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0 makes close() send RST instead of FIN: a "connection reset".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # aiohttp's attempt to send this fails quietly on the aborted transport.
    return web.StreamResponse()


class OpenAISimulator:
    """An aiohttp server speaking the OpenAI / Azure OpenAI chat protocol.

    All state lives on the event loop that runs the server; from other threads
    use the :class:`SimulatorHandle` returned by :func:`run_in_thread`.
    """

    def __init__(self, api_key: str = DEFAULT_API_KEY) -> None:
        self.api_key = api_key
        self.config = SimConfig()
        self._tokens = _reply_tokens(self.config)
        self._faults: collections.deque[Fault] = collections.deque()
        self._sticky: Fault | None = None
        self._script: Script | None = None
        self._requests: collections.deque[JSON] = collections.deque(maxlen=MAX_RECORDED_REQUESTS)
        self._stats = self._zero_stats()
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        # OpenAI serves embeddings on the same host, so clients configured with one base URL
        # (the gateway's openai provider) reach both.
        self.embeddings = EmbeddingsSimulator(api_key)

    # -- lifecycle -----------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        # Generous body limit: benchmarks send long prompts.
        app = web.Application(client_max_size=64 * 1024**2)
        app.add_routes(self.embeddings.routes())
        app.add_routes(
            [
                web.post("/v1/chat/completions", self._openai_chat),
                web.post("/openai/deployments/{deployment}/chat/completions", self._azure_chat),
                web.get("/v1/models", self._models),
                web.post("/__sim/faults", self._post_faults),
                web.delete("/__sim/faults", self._delete_faults),
                web.get("/__sim/requests", self._get_requests),
                web.delete("/__sim/requests", self._delete_requests),
                web.get("/__sim/stats", self._get_stats),
                web.get("/__sim/config", self._get_config),
                web.post("/__sim/config", self._post_config),
                web.post("/__sim/reset", self._post_reset),
                web.post("/__sim/script", self._post_script),
                web.delete("/__sim/script", self._delete_script),
                web.route("*", "/{tail:.*}", self._not_found),
            ]
        )
        # handler_cancellation: a client disconnect cancels its handler at once,
        # which is how hung ("timeout") requests end and how an abandoned slow
        # stream is noticed without waiting for the next write.
        # A short shutdown_timeout keeps stop() quick while requests hang.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._host = host
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    @property
    def base_url(self) -> str:
        """Server root: the Azure endpoint, and where ``/__sim`` lives."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for ``openai.OpenAI``."""
        return self.base_url + "/v1"

    # -- control state (call on the server's loop) ----------------------------

    def add_faults(self, faults: list[Fault], sticky: bool = False) -> None:
        """Queue faults for the next chat requests, one each; with ``sticky``
        the last one then applies to every request until cleared."""
        if sticky and faults:
            self._faults.extend(faults[:-1])
            self._sticky = faults[-1]
        else:
            self._faults.extend(faults)

    def clear_faults(self) -> None:
        self._faults.clear()
        self._sticky = None

    def requests(self) -> list[JSON]:
        return list(self._requests)

    def clear_requests(self) -> None:
        self._requests.clear()

    def stats(self) -> JSON:
        return dict(self._stats)

    def configure(self, **options: Any) -> SimConfig:
        """Update behaviour options (see :class:`SimConfig`); validates them."""
        config = msgspec.convert({**msgspec.structs.asdict(self.config), **options}, SimConfig)
        self.config = config
        self._tokens = _reply_tokens(config)
        return config

    def reset(self) -> None:
        """Back to a freshly constructed state (faults, records, stats, config)."""
        self.clear_faults()
        self.clear_requests()
        self.embeddings.reset()
        self._script = None
        self._stats = self._zero_stats()
        self.config = SimConfig()
        self._tokens = _reply_tokens(self.config)

    @staticmethod
    def _zero_stats() -> dict[str, int]:
        return dict.fromkeys(
            (
                "requests",
                "chat_requests",
                "faults_applied",
                "streams_started",
                "streams_completed",
                "cancelled_streams",
                "active_streams",
            ),
            0,
        )

    def _next_fault(self) -> Fault | None:
        if self._faults:
            return self._faults.popleft()
        return self._sticky

    def _record(self, request: web.Request, body: Any, auth_ok: bool) -> None:
        self._stats["requests"] += 1
        self._requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                # Lower-cased: header names are case-insensitive and clients differ.
                "headers": {
                    k.lower(): v
                    for k, v in request.headers.items()
                    if k.lower() not in ("authorization", "api-key")
                },
                "auth_ok": auth_ok,
                "body": body,
            }
        )

    # -- protocol routes -------------------------------------------------------

    def _bearer_ok(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, azure=False)

    async def _azure_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, azure=True)

    async def _chat(self, request: web.Request, azure: bool) -> web.StreamResponse:
        self._stats["chat_requests"] += 1
        raw = await request.read()
        try:
            body: Any = _decode(raw)
        except msgspec.DecodeError:
            body = None
        auth_ok = (
            request.headers.get("api-key") == self.api_key if azure else self._bearer_ok(request)
        )
        self._record(request, body, auth_ok)

        api_version = request.query.get("api-version", "")
        if azure and not api_version:
            message = "Missing required query parameter 'api-version'."
            return _azure_error(400, "MissingApiVersionParameter", message)
        if azure and not _API_VERSION_RE.match(api_version):
            return _azure_error(
                400, "InvalidApiVersionParameter", f"Unsupported api-version '{api_version}'."
            )
        if not auth_ok:
            if azure:
                message = (
                    "Access denied due to invalid subscription key or wrong API endpoint. "
                    "Make sure to provide a valid key for an active subscription and use a "
                    "correct regional API endpoint for your resource."
                )
                return _azure_error(401, "401", message)
            message = (
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            return _openai_error(401, message, code="invalid_api_key")

        if not isinstance(body, dict):
            message = (
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON.)"
            )
            return _openai_error(400, message)
        model = request.match_info["deployment"] if azure else body.get("model")
        if not isinstance(model, str) or not model:
            return _openai_error(400, "you must provide a model parameter")
        messages = body.get("messages")
        if not isinstance(messages, list):
            return _openai_error(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        if not messages:
            message = (
                "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                "but got an empty array instead."
            )
            return _openai_error(400, message, param="messages", code="empty_array")
        stream = body.get("stream") is True
        stream_options = body.get("stream_options")
        if stream_options is not None and not stream:
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            return _openai_error(400, message, param="stream_options", code="invalid_value")

        fault_header = request.headers.get("x-sim-fault")
        try:
            reply = (
                _scripted_reply(self._script)
                if self._script is not None
                else _build_reply(body, self._tokens)
            )
            top_logprobs = _top_logprobs(body)
            # Popped last so that a rejected request does not use up a fault.
            fault = (
                msgspec.json.decode(fault_header, type=Fault)
                if fault_header
                else self._next_fault()
            )
        except msgspec.ValidationError as exc:
            return _openai_error(400, f"Invalid x-sim-fault header: {exc}", param="x-sim-fault")
        except msgspec.DecodeError:
            return _openai_error(400, "x-sim-fault header is not valid JSON.", param="x-sim-fault")
        except _BadRequest as exc:
            return _openai_error(400, exc.message, param=exc.param, code=exc.code)

        if fault is not None:
            self._stats["faults_applied"] += 1
            if fault.kind == "latency":
                await asyncio.sleep(fault.ms / 1000)
            elif fault.kind == "status":
                return _fault_status_response(fault, azure, api_version)
            elif fault.kind == "timeout":
                # Never answers; the handler is cancelled when the client leaves
                # or the server stops.
                await asyncio.get_running_loop().create_future()
            elif fault.kind == "reset":
                return _abort(request)

        options = stream_options if isinstance(stream_options, dict) else {}
        exchange = _Exchange(
            model=model,
            reply=reply,
            prompt_tokens=_prompt_tokens(messages),
            top_logprobs=top_logprobs,
            include_usage=options.get("include_usage") is True,
            # Azure does not obfuscate; OpenAI does unless asked not to.
            obfuscation=not azure and options.get("include_obfuscation") is not False,
            content_filter=azure and self.config.azure_content_filter,
            cached_tokens=self.config.cached_tokens,
        )
        headers = {"x-request-id": _random_id("req_")}
        if stream:
            return await self._stream(request, exchange, fault, headers)
        payload = _encode(_completion_body(exchange))
        if fault is not None and fault.kind == "slow_tokens":
            await asyncio.sleep(fault.ms * max(1, reply.completion_tokens) / 1000)
        if fault is not None and fault.kind == "disconnect_mid_stream":
            # Non-streaming variant: headers and half the body, then the reset.
            response = web.StreamResponse(headers=headers)
            response.content_type = "application/json"
            response.content_length = len(payload)
            await response.prepare(request)
            await response.write(payload[: len(payload) // 2])
            return _abort(request)
        return web.Response(body=payload, content_type="application/json", headers=headers)

    async def _stream(
        self,
        request: web.Request,
        exchange: _Exchange,
        fault: Fault | None,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        delay = fault.ms / 1000 if fault is not None and fault.kind == "slow_tokens" else 0.0
        cut_after = (
            fault.after_chunks
            if fault is not None and fault.kind == "disconnect_mid_stream"
            else -1
        )
        response = web.StreamResponse(headers=headers)
        response.content_type = "text/event-stream"
        response.charset = "utf-8"
        stats = self._stats
        stats["streams_started"] += 1
        stats["active_streams"] += 1
        try:
            await response.prepare(request)
            for sent, frame in enumerate(_stream_frames(exchange)):
                if sent == cut_after:
                    return _abort(request)
                if delay and sent:
                    await asyncio.sleep(delay)
                await response.write(frame)
            stats["streams_completed"] += 1
            return response
        except asyncio.CancelledError:
            # Client went away (handler cancellation) or the server is stopping.
            stats["cancelled_streams"] += 1
            raise
        except ConnectionResetError:
            # A write raced the disconnect, before the cancellation arrived.
            stats["cancelled_streams"] += 1
            return response
        finally:
            stats["active_streams"] -= 1

    async def _models(self, request: web.Request) -> web.Response:
        auth_ok = self._bearer_ok(request)
        self._record(request, None, auth_ok)
        if not auth_ok:
            return _openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        data = [
            {"id": m, "object": "model", "created": 1715367049, "owned_by": "system"}
            for m in self.config.models
        ]
        return _json_response({"object": "list", "data": data})

    async def _not_found(self, request: web.Request) -> web.Response:
        return _openai_error(404, f"Invalid URL ({request.method} {request.path})")

    # -- control routes ----------------------------------------------------------

    async def _post_faults(self, request: web.Request) -> web.Response:
        try:
            parsed = msgspec.json.decode(await request.read(), type=_FaultsBody)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _json_response({"error": str(exc)}, 400)
        self.add_faults(parsed.faults, parsed.sticky)
        return _json_response({"queued": len(self._faults), "sticky": self._sticky})

    async def _delete_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return _json_response({"queued": 0, "sticky": None})

    async def _post_script(self, request: web.Request) -> web.Response:
        try:
            self._script = msgspec.json.decode(await request.read(), type=Script)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _json_response({"error": str(exc)}, status=400)
        return _json_response({"script": msgspec.to_builtins(self._script)})

    async def _delete_script(self, request: web.Request) -> web.Response:
        self._script = None
        return _json_response({"script": None})

    async def _get_requests(self, request: web.Request) -> web.Response:
        return _json_response({"requests": self.requests()})

    async def _delete_requests(self, request: web.Request) -> web.Response:
        self.clear_requests()
        return _json_response({"requests": []})

    async def _get_stats(self, request: web.Request) -> web.Response:
        return _json_response(self._stats)

    async def _get_config(self, request: web.Request) -> web.Response:
        return _json_response(self.config)

    async def _post_config(self, request: web.Request) -> web.Response:
        try:
            options = _decode(await request.read())
            if not isinstance(options, dict):
                raise msgspec.ValidationError("expected a JSON object")
            return _json_response(self.configure(**options))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _json_response({"error": str(exc)}, 400)

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return _json_response({"reset": True})


class SimulatorHandle(SimulatorThread[OpenAISimulator]):
    """The simulator's controls, callable from the tests' thread."""

    @property
    def port(self) -> int:
        return self.simulator.port

    @property
    def base_url(self) -> str:
        return self.simulator.base_url

    @property
    def openai_base_url(self) -> str:
        return self.simulator.openai_base_url

    @property
    def api_key(self) -> str:
        return self.simulator.api_key

    def add_faults(self, *faults: dict[str, Any] | Fault, sticky: bool = False) -> None:
        parsed = [f if isinstance(f, Fault) else msgspec.convert(f, Fault) for f in faults]
        self._call(lambda: self.simulator.add_faults(parsed, sticky))

    def clear_faults(self) -> None:
        self._call(self.simulator.clear_faults)

    def requests(self) -> list[JSON]:
        return self._call(self.simulator.requests)

    def clear_requests(self) -> None:
        self._call(self.simulator.clear_requests)

    def stats(self) -> JSON:
        return self._call(self.simulator.stats)

    def configure(self, **options: Any) -> SimConfig:
        return self._call(lambda: self.simulator.configure(**options))

    def reset(self) -> None:
        self._call(self.simulator.reset)


def run_in_thread(
    port: int = 0, host: str = "127.0.0.1", api_key: str = DEFAULT_API_KEY
) -> SimulatorHandle:
    """Start a simulator on its own event loop in a daemon thread."""
    simulator = OpenAISimulator(api_key=api_key)
    return SimulatorHandle(simulator, simulator.start(host, port), "openai-sim")


async def _serve(host: str, port: int, api_key: str) -> None:
    simulator = OpenAISimulator(api_key=api_key)
    await simulator.start(host, port)
    print(f"openai-sim listening on {simulator.base_url}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        await simulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument(
        "--api-key", default=DEFAULT_API_KEY, help="the accepted key (Bearer or api-key)"
    )
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.api_key))


if __name__ == "__main__":
    main()
