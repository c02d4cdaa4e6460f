"""Ollama's native chat API: ``POST {host}/api/chat``, newline-delimited JSON streams.

Reference: https://github.com/ollama/ollama/blob/main/docs/api.md#generate-a-chat-completion
and the ``ollama`` Python package's types. Ollama differs from Chat Completions in ways that
matter here: sampling settings live in ``options`` (``num_predict``, ``repeat_penalty``...),
images are bare base64 strings beside the text, tool-call arguments are JSON objects and
calls carry no ids, tool results name the function instead of a call id, and usage arrives
as ``prompt_eval_count`` / ``eval_count`` on the last message.

Order: constants, credentials, request building, response parsing, stream parsing, errors.
"""

from __future__ import annotations

import ipaddress
import os
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import msgspec
from msgspec import UNSET

from switchyard.catalog import Catalog, Endpoint, ProviderSpec
from switchyard.errors import InvalidRequest, UpstreamError
from switchyard.providers.base import StreamState, UpstreamRequest
from switchyard.providers.data_url import is_data_url, parse_data_url
from switchyard.providers.openai import map_openai_error
from switchyard.settings import ProviderConfig
from switchyard.sse import SSEEvent
from switchyard.wire.chat import (
    AssistantMessage,
    ChatChunk,
    ChatRequest,
    ChatResult,
    Choice,
    Delta,
    FunctionCall,
    FunctionCallDelta,
    ImagePart,
    JsonObjectFormat,
    JsonSchemaFormat,
    Message,
    ResponseMessage,
    StreamChoice,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    Usage,
    UserMessage,
)

# --- constants ----------------------------------------------------------------------------

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_PORT = 11434

# Request fields that become Ollama `options`, each gated on the endpoint supporting it.
OPTION_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "repetition_penalty": "repeat_penalty",
}

# "load" / "unload" answer requests that only (un)load a model; they ended normally.
DONE_REASONS = {"stop": "stop", "length": "length", "load": "stop", "unload": "stop"}

_encode = msgspec.json.encode


class _Function(msgspec.Struct):
    name: str
    # An object per the API; a JSON string is passed through as-is rather than refused.
    arguments: dict[str, Any] | str = {}


class _ToolCall(msgspec.Struct):
    function: _Function


class _Message(msgspec.Struct):
    role: str = "assistant"
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _ChatLine(msgspec.Struct):
    """One response object: the whole reply, or one line of a stream."""

    model: str = ""
    message: _Message | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    error: str | None = None


_line_decoder = msgspec.json.Decoder(_ChatLine)


# --- credentials --------------------------------------------------------------------------


def parse_host(host: str) -> str:
    """An OLLAMA_HOST value as the ollama client reads it ("host", ":port", URLs ...)."""
    scheme, _, hostport = host.partition("://")
    port = DEFAULT_PORT
    if not hostport:
        scheme, hostport = "http", host
    elif scheme == "http":
        port = 80
    elif scheme == "https":
        port = 443
    split = urllib.parse.urlsplit(f"{scheme}://{hostport}")
    name = split.hostname or "127.0.0.1"
    port = split.port or port
    try:
        if isinstance(ipaddress.ip_address(name), ipaddress.IPv6Address):
            name = f"[{name}]"
    except ValueError:
        pass
    path = split.path.strip("/")
    return f"{scheme}://{name}:{port}" + (f"/{path}" if path else "")


def resolve_base_url(
    spec: ProviderSpec, config: ProviderConfig | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """Enabled only when configured: a [providers.ollama] table, or OLLAMA_HOST set."""
    env = os.environ if environ is None else environ
    if config is not None and not config.enabled:
        return None
    if config is not None and config.base_url:
        return config.base_url.rstrip("/")
    host = env.get(spec.base_url_env) if spec.base_url_env else None
    if host:
        return parse_host(host)
    if config is not None:
        return spec.base_url.rstrip("/") if spec.base_url else DEFAULT_HOST
    return None


# --- request building ---------------------------------------------------------------------


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if content is None or content is UNSET:
        return ""
    return "".join(part.text for part in content if isinstance(part, TextPart))


def _image_data(url: str, field: str) -> str:
    """The base64 payload of a data: URL; Ollama takes nothing else (and we do no I/O)."""
    if not is_data_url(url):
        raise InvalidRequest(
            "Ollama needs images inline as base64 data: URLs "
            "(data:image/png;base64,...) or http(s) URLs",
            field=field,
        )
    return parse_data_url(url, field).data


def _user_message(message: UserMessage, index: int) -> dict[str, Any]:
    if isinstance(message.content, str):
        return {"role": "user", "content": message.content}
    texts: list[str] = []
    images: list[str] = []
    for j, part in enumerate(message.content):
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ImagePart):
            field = f"messages[{index}].content[{j}].image_url.url"
            images.append(_image_data(part.image_url.url, field))
        else:
            raise InvalidRequest(
                f"Ollama accepts text and image parts only, not {type(part).__name__}",
                field=f"messages[{index}].content[{j}].type",
            )
    out: dict[str, Any] = {"role": "user", "content": "".join(texts)}
    if images:
        out["images"] = images
    return out


def _assistant_message(
    message: AssistantMessage, index: int, names: dict[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "assistant", "content": _text(message.content)}
    if isinstance(message.reasoning, str) and message.reasoning:
        out["thinking"] = message.reasoning
    if message.tool_calls:
        calls = []
        for j, call in enumerate(message.tool_calls):
            names[call.id] = call.function.name
            try:
                arguments = msgspec.json.decode(call.function.arguments or "{}")
            except msgspec.DecodeError:
                arguments = None
            if not isinstance(arguments, dict):
                raise InvalidRequest(
                    "Tool call arguments must be a JSON object for Ollama",
                    field=f"messages[{index}].tool_calls[{j}].function.arguments",
                )
            calls.append({"function": {"name": call.function.name, "arguments": arguments}})
        out["tool_calls"] = calls
    return out


def build_messages(messages: list[Message]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}  # tool call id -> function name, for the tool results
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        if isinstance(message, UserMessage):
            out.append(_user_message(message, index))
        elif isinstance(message, AssistantMessage):
            out.append(_assistant_message(message, index, names))
        elif isinstance(message, ToolMessage):
            result: dict[str, Any] = {"role": "tool", "content": _text(message.content)}
            name = names.get(message.tool_call_id)
            if name is not None:
                result["tool_name"] = name
            out.append(result)
        else:  # system and developer instructions
            out.append({"role": "system", "content": _text(message.content)})
    return out


def _think(request: ChatRequest) -> bool | None:
    """Ollama's `think` switch from OpenRouter's `reasoning` / `reasoning_effort`."""
    reasoning = request.reasoning
    if reasoning is not UNSET:
        if reasoning.enabled is False or reasoning.effort == "none":
            return False
        if reasoning.enabled is True or isinstance(reasoning.effort, str):
            return True
        if isinstance(reasoning.max_tokens, int):
            return reasoning.max_tokens > 0
    effort = request.reasoning_effort
    if isinstance(effort, str):
        return effort != "none"
    return None


class OllamaAdapter:
    def wants_inline(self, url: str) -> bool:
        # Ollama takes base64 images only; the provider fetches http(s) URLs for us.
        return True

    def __init__(self, spec: ProviderSpec, base_url: str, catalog: Catalog) -> None:
        self.spec = spec
        self.base_url = base_url
        self._url = f"{base_url}/api/chat"
        self._catalog = catalog
        self._headers = {"Content-Type": "application/json"}

    def build_request(
        self, request: ChatRequest, endpoint: Endpoint, *, stream: bool
    ) -> UpstreamRequest:
        supported = self._catalog.parameter_set(endpoint)
        body: dict[str, Any] = {
            "model": endpoint.upstream_model,
            "messages": build_messages(request.messages),
            "stream": stream,
        }
        if request.tools and request.tool_choice != "none" and "tools" in supported:
            body["tools"] = [
                {"type": "function", "function": _function(tool.function)} for tool in request.tools
            ]
        if "response_format" in supported:
            fmt = request.response_format
            if isinstance(fmt, JsonObjectFormat):
                body["format"] = "json"
            elif isinstance(fmt, JsonSchemaFormat) and fmt.json_schema.schema is not UNSET:
                body["format"] = fmt.json_schema.schema
        if "reasoning" in supported:
            think = _think(request)
            if think is not None:
                body["think"] = think
        options = self._options(request, supported)
        if options:
            body["options"] = options
        return UpstreamRequest("POST", self._url, self._headers, _encode(body))

    @staticmethod
    def _options(request: ChatRequest, supported: frozenset[str]) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for name, option in OPTION_NAMES.items():
            value = getattr(request, name)
            if value is not UNSET and value is not None and name in supported:
                options[option] = value
        limit = request.output_limit()
        if limit is not None and supported & {"max_tokens", "max_completion_tokens"}:
            options["num_predict"] = limit
        stop = request.stop
        if stop is not UNSET and stop is not None and "stop" in supported:
            options["stop"] = [stop] if isinstance(stop, str) else stop
        return options

    # --- response parsing -----------------------------------------------------------------

    def parse_response(self, body: bytes) -> ChatResult:
        line = _line_decoder.decode(body)
        if line.error is not None:
            raise self._error(line.error)
        message = line.message or _Message()
        calls = [
            ToolCall(id=_call_id(), function=FunctionCall(c.function.name, _args(c.function)))
            for c in message.tool_calls or ()
        ]
        out = ResponseMessage(content=message.content or (None if calls else ""))
        if message.thinking:
            out.reasoning = message.thinking
        if calls:
            out.tool_calls = calls
        return ChatResult(
            id="",
            created=int(time.time()),
            model=line.model,
            choices=[
                Choice(
                    index=0,
                    message=out,
                    finish_reason=finish_reason(line.done_reason, bool(calls)),
                    native_finish_reason=line.done_reason,
                )
            ],
            usage=_usage(line),
        )

    # --- stream parsing -------------------------------------------------------------------

    def stream_parser(self) -> NDJSONParser:
        return NDJSONParser()

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatChunk]:
        line = _line_decoder.decode(event.data)
        if line.error is not None:
            raise self._error(line.error)
        delta = Delta()
        if not state.extra.get("started"):
            state.extra["started"] = True
            delta.role = "assistant"
        message = line.message
        if message is not None:
            if message.content:
                delta.content = message.content
            if message.thinking:
                delta.reasoning = message.thinking
            if message.tool_calls:
                first = int(state.extra.get("tool_calls", 0))  # type: ignore[call-overload]
                delta.tool_calls = [
                    ToolCallDelta(
                        index=first + i,
                        id=_call_id(),
                        type="function",
                        function=FunctionCallDelta(c.function.name, _args(c.function)),
                    )
                    for i, c in enumerate(message.tool_calls)
                ]
                state.extra["tool_calls"] = first + len(message.tool_calls)
        chunks = []
        if delta != Delta():
            chunks.append(_chunk(line.model, StreamChoice(index=0, delta=delta)))
        if line.done:
            finish = finish_reason(line.done_reason, bool(state.extra.get("tool_calls")))
            done = StreamChoice(
                index=0, delta=Delta(), finish_reason=finish, native_finish_reason=line.done_reason
            )
            chunks.append(_chunk(line.model, done))
            state.usage_seen = True
            usage_chunk = _chunk(line.model, None)
            usage_chunk.usage = _usage(line)
            chunks.append(usage_chunk)
        return chunks

    # --- errors ---------------------------------------------------------------------------

    def _error(self, message: str) -> UpstreamError:
        return UpstreamError(
            f"{self.spec.name} reported an error: {message}", provider=self.spec.name, raw=message
        )

    def map_error(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        # Ollama's error body is {"error": "<message>"}; the shared mapping keeps the message
        # in metadata.raw and picks our status and retry policy.
        return map_openai_error(self.spec.name, status, headers, body)


def _function(function: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": function.name}
    if function.description is not UNSET:
        out["description"] = function.description
    out["parameters"] = (
        function.parameters if function.parameters is not UNSET else {"type": "object"}
    )
    return out


def _args(function: _Function) -> str:
    arguments = function.arguments
    return arguments if isinstance(arguments, str) else _encode(arguments).decode()


def _call_id() -> str:
    # Ollama's calls have no ids; clients need one to answer each call.
    return "call_" + os.urandom(12).hex()


def _usage(line: _ChatLine) -> Usage:
    prompt = line.prompt_eval_count or 0
    completion = line.eval_count or 0
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _chunk(model: str, choice: StreamChoice | None) -> ChatChunk:
    return ChatChunk(id="", created=0, model=model, choices=[choice] if choice else [])


def finish_reason(native: str | None, tool_calls: bool) -> str:
    if tool_calls:
        return "tool_calls"
    if native is None:
        return "stop"
    return DONE_REASONS.get(native, "error")


class NDJSONParser:
    """Newline-delimited JSON: one event per non-empty line, split anywhere in the bytes."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        *lines, self._buffer = buffer.split(b"\n")
        return [SSEEvent(line) for line in lines if line.strip()]

    def flush(self) -> list[SSEEvent]:
        rest, self._buffer = self._buffer, b""
        return [SSEEvent(rest)] if rest.strip() else []
