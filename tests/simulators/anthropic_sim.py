"""Deterministic simulator of Anthropic's Messages API (``POST /v1/messages``).

Stands in for api.anthropic.com in tests. It validates requests the way the API does
(``x-api-key``, ``anthropic-version``, required ``max_tokens``, a first ``user`` turn,
tool results that answer the previous turn's tool uses, thinking budgets, sampling ranges)
and answers in the API's exact JSON and SSE event sequence, which its tests check by
driving the official ``anthropic`` SDK at it.

One deliberate strictness: the real API now merges consecutive same-role turns, but this
simulator refuses them, so an adapter that forgets to merge is caught here.

Replies are fixed text (or tool uses, a thinking block when thinking is on, JSON when
``output_config.format`` asks for it). Faults (latency, error statuses with ``retry-after``,
hangs, connection resets, mid-stream disconnects and in-stream ``error`` events) and
conformance scripts are set through a JSON control API under ``/__sim``.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from aiohttp import web

from tests.conformance.contract import Script
from tests.simulators.openai_sim import example_from_schema, tokenize
from tests.simulators.threaded import SimulatorThread

DEFAULT_API_KEY = "sk-ant-sim-test"
DEFAULT_REPLY = "Hello from the simulator."
DEFAULT_THINKING = "The user greets me; a short friendly answer will do."
API_VERSIONS = frozenset({"2023-01-01", "2023-06-01", "2026-10-21"})
# From API version 2026-10-21 on, the sampling parameters are gone (a 400 if sent).
_REMOVED_IN_2026_10_21 = ("temperature", "top_p", "top_k")
MAX_RECORDED_REQUESTS = 1000
MIN_THINKING_BUDGET = 1024

_T = TypeVar("_T")
JSON = dict[str, Any]

_encode = msgspec.json.encode
_decode = msgspec.json.decode

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ERROR_MESSAGES = {
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "overloaded_error": "Overloaded",
    "api_error": "Internal server error",
}


class Fault(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One injected failure of a messages request, by ``kind``:

    - ``latency``: wait ``ms`` before responding;
    - ``status``: answer ``status`` with Anthropic's error body (``retry-after`` when
      ``retry_after`` is given);
    - ``timeout``: never answer;
    - ``reset``: close the connection with a TCP RST and no response;
    - ``disconnect_mid_stream``: send ``after_events`` SSE events, then reset
      (non-streaming requests get the headers and half the body);
    - ``error_event``: send ``after_events`` SSE events, then an ``error`` event of
      ``error_type`` and end the stream, as the API does when it overloads mid-way;
    - ``slow_events``: wait ``ms`` before every stream event after the first.
    """

    kind: Literal[
        "latency",
        "status",
        "timeout",
        "reset",
        "disconnect_mid_stream",
        "error_event",
        "slow_events",
    ]
    ms: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    status: Annotated[int, msgspec.Meta(ge=400, le=599)] = 500
    retry_after: Annotated[float, msgspec.Meta(ge=0)] | None = None
    after_events: Annotated[int, msgspec.Meta(ge=0)] = 0
    error_type: str = "overloaded_error"


class SimConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Behaviour options settable through ``POST /__sim/config``."""

    reply: Annotated[str, msgspec.Meta(min_length=1)] = DEFAULT_REPLY
    thinking: Annotated[str, msgspec.Meta(min_length=1)] = DEFAULT_THINKING
    # Input tokens reported as read from / written to the prompt cache (capped at the
    # prompt's size).
    cache_read_tokens: Annotated[int, msgspec.Meta(ge=0)] = 0
    cache_write_tokens: Annotated[int, msgspec.Meta(ge=0)] = 0


class _FaultsBody(msgspec.Struct, forbid_unknown_fields=True):
    faults: list[Fault]
    sticky: bool = False


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _random_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


def _signature(text: str) -> str:
    """An opaque, checkable stand-in for Claude's thinking signature."""
    return "sim-sig-" + format(sum(text.encode()) % 1_000_003, "x")


# --- request validation -----------------------------------------------------------------


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


def _check_block(block: Any, role: str, where: str) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise _BadRequest(f"{where}: Input should be a valid content block")
    kind = block["type"]
    allowed = {
        "user": {"text", "image", "document", "tool_result"},
        "assistant": {"text", "tool_use", "thinking", "redacted_thinking"},
    }[role]
    if kind not in allowed:
        raise _BadRequest(f"{where}.type: `{kind}` blocks are not allowed in `{role}` turns")
    if kind == "text":
        if not isinstance(block.get("text"), str) or not block["text"]:
            raise _BadRequest(f"{where}: text content blocks must be non-empty")
    elif kind == "image":
        _check_image_source(block.get("source"), f"{where}.source")
    elif kind == "document":
        _check_document_source(block.get("source"), f"{where}.source")
    elif kind == "tool_use":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise _BadRequest(f"{where}: tool_use blocks need `id` and `name`")
        if not isinstance(block.get("input"), dict):
            raise _BadRequest(f"{where}.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            raise _BadRequest(f"{where}.tool_use_id: Field required")
        content = block.get("content")
        if isinstance(content, list):
            for k, inner in enumerate(content):
                _check_block(inner, "user", f"{where}.content.{k}")
    elif kind == "thinking":
        if not isinstance(block.get("thinking"), str):
            raise _BadRequest(f"{where}.thinking: Field required")
        if not isinstance(block.get("signature"), str) or not block["signature"]:
            raise _BadRequest(f"{where}.signature: Field required")
    elif kind == "redacted_thinking" and not isinstance(block.get("data"), str):
        raise _BadRequest(f"{where}.data: Field required")


def _check_image_source(source: Any, where: str) -> None:
    if not isinstance(source, dict):
        raise _BadRequest(f"{where}: Field required")
    if source.get("type") == "base64":
        if source.get("media_type") not in _IMAGE_TYPES:
            raise _BadRequest(
                f"{where}.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif'"
                " or 'image/webp'"
            )
        if not isinstance(source.get("data"), str) or not source["data"]:
            raise _BadRequest(f"{where}.data: Field required")
    elif source.get("type") == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise _BadRequest(f"{where}.url: must be an http(s) URL")
    else:
        raise _BadRequest(f"{where}.type: Input should be 'base64' or 'url'")


def _check_document_source(source: Any, where: str) -> None:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        if source.get("media_type") != "application/pdf" or not source.get("data"):
            raise _BadRequest(f"{where}: base64 documents must be application/pdf with data")
    elif kind == "text":
        if source.get("media_type") != "text/plain" or not isinstance(source.get("data"), str):
            raise _BadRequest(f"{where}: text documents must be text/plain with data")
    elif kind == "url":
        if not str(source.get("url", "")).startswith(("http://", "https://")):
            raise _BadRequest(f"{where}.url: must be an http(s) URL")
    else:
        raise _BadRequest(f"{where}.type: Input should be 'base64', 'text', 'url' or 'content'")


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise _BadRequest("messages: Field required")
    if not messages:
        raise _BadRequest("messages: at least one message is required")
    previous_uses: set[str] = set()
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise _BadRequest(f"{where}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in ("user", "assistant"):
            raise _BadRequest(f"{where}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise _BadRequest('messages: first message must use the "user" role')
        if i > 0 and messages[i - 1].get("role") == role:
            raise _BadRequest(
                f'messages: roles must alternate between "user" and "assistant", but found '
                f'multiple "{role}" roles in a row'
            )
        content = message.get("content")
        if isinstance(content, str):
            blocks: list[Any] = [{"type": "text", "text": content}] if content else []
            if not content and not (role == "assistant" and i == len(messages) - 1):
                raise _BadRequest(f"{where}: all messages must have non-empty content")
        elif isinstance(content, list):
            if not content:
                raise _BadRequest(f"{where}: all messages must have non-empty content")
            blocks = content
            for k, block in enumerate(blocks):
                _check_block(block, role, f"{where}.content.{k}")
        else:
            raise _BadRequest(f"{where}.content: Field required")
        results = [b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"]
        for k, block in enumerate(blocks):
            if block.get("type") == "tool_result" and block["tool_use_id"] not in previous_uses:
                raise _BadRequest(
                    f"{where}.content.{k}: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {block['tool_use_id']}. Each `tool_result` block must have a "
                    "corresponding `tool_use` block in the previous message."
                )
        if role == "user":
            missing = previous_uses - set(results)
            if missing:
                raise _BadRequest(
                    f"messages.{i - 1}: `tool_use` ids were found without `tool_result` "
                    f"blocks immediately after: {', '.join(sorted(missing))}. Each `tool_use` "
                    "block must have a corresponding `tool_result` block in the next message."
                )
            previous_uses = set()
        else:
            previous_uses = {b["id"] for b in blocks if b.get("type") == "tool_use"}


def _number(body: JSON, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _BadRequest(f"{name}: Input should be between {low:g} and {high:g}")


def _check_body(body: Any) -> JSON:
    """Validate a request as the API does; returns the body."""
    if not isinstance(body, dict):
        raise _BadRequest("Request body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _BadRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _BadRequest("max_tokens: Field required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
        raise _BadRequest("max_tokens: Input should be a valid non-negative integer")
    _check_messages(body.get("messages"))
    system = body.get("system")
    if system is not None:
        if isinstance(system, list):
            for k, block in enumerate(system):
                if not isinstance(block, dict) or block.get("type") != "text":
                    raise _BadRequest(f"system.{k}.type: Input should be 'text'")
                if not block.get("text"):
                    raise _BadRequest(f"system.{k}: text content blocks must be non-empty")
        elif not isinstance(system, str):
            raise _BadRequest("system: Input should be a valid string or list of text blocks")
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise _BadRequest("top_k: Input should be a non-negative integer")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops)
    ):
        raise _BadRequest("stop_sequences: Input should be a list of non-empty strings")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        raise _BadRequest("metadata: only `user_id` is allowed")
    tools = _check_tools(body)
    thinking = _check_thinking(body, max_tokens)
    choice = body.get("tool_choice")
    if choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind not in ("auto", "any", "tool", "none"):
            raise _BadRequest("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
        if kind == "tool" and choice.get("name") not in {t["name"] for t in tools}:
            raise _BadRequest(f"tool_choice.name: tool `{choice.get('name')}` not found in tools")
        if thinking and kind in ("any", "tool"):
            raise _BadRequest("Thinking may not be enabled when tool_choice forces tool use.")
    output = body.get("output_config")
    if output is not None:
        fmt = output.get("format") if isinstance(output, dict) else None
        if fmt is not None and (
            not isinstance(fmt, dict)
            or fmt.get("type") != "json_schema"
            or not isinstance(fmt.get("schema"), dict)
        ):
            raise _BadRequest("output_config.format: expected {type: json_schema, schema}")
    return body


def _check_tools(body: JSON) -> list[JSON]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _BadRequest("tools: Input should be a valid list")
    for k, tool in enumerate(tools):
        if not isinstance(tool, dict) or not _TOOL_NAME.match(str(tool.get("name", ""))):
            raise _BadRequest(
                f"tools.{k}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            )
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise _BadRequest(f"tools.{k}.input_schema.type: Input should be 'object'")
    return tools


def _check_thinking(body: JSON, max_tokens: int) -> bool:
    thinking = body.get("thinking")
    if thinking is None:
        return False
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind in ("disabled",):
        return False
    if kind == "adaptive":
        return True
    if kind != "enabled":
        raise _BadRequest("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
        raise _BadRequest(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        )
    if budget >= max_tokens:
        raise _BadRequest("`max_tokens` must be greater than `thinking.budget_tokens`")
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise _BadRequest(
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our "
            "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
        )
    if body.get("top_k") is not None:
        raise _BadRequest("`top_k` is not compatible with thinking")
    return True


# --- replies ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Reply:
    """The content blocks of one answer, its stop reason and its usage."""

    blocks: list[JSON]
    stop_reason: str
    input_tokens: int
    output_tokens: int
    cache_read: int = 0
    cache_write: int = 0
    thinking_tokens: int = 0
    stop_sequence: str | None = None
    id: str = field(default_factory=lambda: _random_id("msg_sim"))

    def usage(self) -> JSON:
        usage: JSON = {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": self.output_tokens,
            "service_tier": "standard",
        }
        if self.thinking_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": self.thinking_tokens}
        return usage


def _prompt_tokens(body: JSON) -> int:
    chars = len(_text_of(body.get("system")))
    for message in body["messages"]:
        chars += len(_text_of(message.get("content")))
    for tool in body.get("tools") or ():
        chars += len(_encode(tool))
    return max(1, chars // 4 + 3 * len(body["messages"]))


def _tool_uses(body: JSON) -> list[JSON]:
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none":
        return []
    if choice.get("type") == "tool":
        chosen = [t for t in tools if t["name"] == choice["name"]]
    else:
        chosen = tools[:1] if choice.get("disable_parallel_tool_use") else tools[:2]
    return [
        {
            "type": "tool_use",
            "id": _random_id("toolu_sim"),
            "name": tool["name"],
            "input": example_from_schema(tool["input_schema"]) or {},
        }
        for tool in chosen
    ]


def _build_reply(body: JSON, config: SimConfig) -> _Reply:
    prompt = _prompt_tokens(body)
    read = min(config.cache_read_tokens, prompt)
    written = min(config.cache_write_tokens, prompt - read)
    budget = body["max_tokens"]
    blocks: list[JSON] = []
    used = 0
    thinking_tokens = 0
    stop_reason = "end_turn"
    stop_sequence: str | None = None
    if _check_thinking(body, body["max_tokens"]):
        pieces = tokenize(config.thinking)[:budget]
        text = "".join(pieces)
        blocks.append({"type": "thinking", "thinking": text, "signature": _signature(text)})
        used = thinking_tokens = len(pieces)
    uses = _tool_uses(body)
    if uses:
        blocks.extend(uses)
        used += sum(len(tokenize(_encode(u["input"]).decode())) for u in uses)
        stop_reason = "tool_use"
    elif budget - used > 0 or budget == 0:
        fmt = (body.get("output_config") or {}).get("format")
        text = _encode(example_from_schema(fmt["schema"])).decode() if fmt else config.reply
        pieces = tokenize(text)
        joined = "".join(pieces)
        cuts = [(i, s) for s in body.get("stop_sequences") or () if (i := joined.find(s)) >= 0]
        if cuts:
            end, stop_sequence = min(cuts)
            pieces = tokenize(joined[:end])
            stop_reason = "stop_sequence"
        if len(pieces) > budget - used:
            pieces = pieces[: max(budget - used, 0)]
            stop_reason, stop_sequence = "max_tokens", None
        if pieces:
            blocks.append({"type": "text", "text": "".join(pieces)})
        used += len(pieces)
    else:
        stop_reason = "max_tokens"
    return _Reply(
        blocks=blocks,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        input_tokens=prompt - read - written,
        output_tokens=max(used, 1),
        cache_read=read,
        cache_write=written,
        thinking_tokens=thinking_tokens,
    )


def _scripted_reply(script: Script) -> _Reply:
    """A conformance script in Anthropic's terms: input_tokens excludes cache reads."""
    blocks: list[JSON] = []
    if script.reasoning:
        blocks.append(
            {
                "type": "thinking",
                "thinking": script.reasoning,
                "signature": _signature(script.reasoning),
            }
        )
    if script.text:
        blocks.append({"type": "text", "text": script.text})
    for call in script.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        )
    usage = script.usage
    return _Reply(
        blocks=blocks,
        stop_reason=_STOP_REASONS[script.finish_reason],
        input_tokens=usage.prompt_tokens - usage.cached_tokens,
        output_tokens=usage.completion_tokens,
        cache_read=usage.cached_tokens,
        thinking_tokens=usage.reasoning_tokens,
    )


def _message_body(reply: _Reply, model: str) -> JSON:
    return {
        "id": reply.id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": reply.blocks,
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": reply.usage(),
    }


def _sse(event: JSON) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + _encode(event) + b"\n\n"


def _fragments(text: str) -> list[str]:
    """At least two pieces (when there are two characters), so clients must reassemble."""
    pieces = tokenize(text)
    if len(pieces) < 2 and len(text) >= 2:
        half = len(text) // 2
        pieces = [text[:half], text[half:]]
    return pieces


def _stream_events(reply: _Reply, model: str) -> Iterator[bytes]:
    """The SSE events of one streamed message, in the API's order."""
    start_usage = {**reply.usage(), "output_tokens": 1}
    start_usage.pop("output_tokens_details", None)
    yield _sse(
        {
            "type": "message_start",
            "message": {
                "id": reply.id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        }
    )
    for index, block in enumerate(reply.blocks):
        kind = block["type"]
        if kind == "text":
            yield _sse(
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                }
            )
            if index == 0:
                yield _sse({"type": "ping"})
            for piece in tokenize(block["text"]):
                delta = {"type": "text_delta", "text": piece}
                yield _sse({"type": "content_block_delta", "index": index, "delta": delta})
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            yield _sse({"type": "content_block_start", "index": index, "content_block": start})
            if index == 0:
                yield _sse({"type": "ping"})
            for piece in tokenize(block["thinking"]):
                delta = {"type": "thinking_delta", "thinking": piece}
                yield _sse({"type": "content_block_delta", "index": index, "delta": delta})
            delta = {"type": "signature_delta", "signature": block["signature"]}
            yield _sse({"type": "content_block_delta", "index": index, "delta": delta})
        elif kind == "tool_use":
            start = {**block, "input": {}}
            yield _sse({"type": "content_block_start", "index": index, "content_block": start})
            if index == 0:
                yield _sse({"type": "ping"})
            fragments = ["", *_fragments(_encode(block["input"]).decode())]
            for fragment in fragments:
                delta = {"type": "input_json_delta", "partial_json": fragment}
                yield _sse({"type": "content_block_delta", "index": index, "delta": delta})
        else:
            yield _sse({"type": "content_block_start", "index": index, "content_block": block})
        yield _sse({"type": "content_block_stop", "index": index})
    final_usage = reply.usage()
    final_usage.pop("service_tier", None)
    yield _sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence},
            "usage": final_usage,
        }
    )
    yield _sse({"type": "message_stop"})


# --- HTTP -------------------------------------------------------------------------------


def _json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_encode(body), status=status, headers=headers, content_type="application/json"
    )


def _error(
    status: int, message: str, kind: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    kind = kind or _ERROR_TYPES.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )
    body = {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": _random_id("req_sim"),
    }
    return _json_response(body, status, headers)


def _fault_response(fault: Fault) -> web.Response:
    headers = {} if fault.retry_after is None else {"retry-after": f"{fault.retry_after:g}"}
    kind = _ERROR_TYPES.get(
        fault.status, "api_error" if fault.status >= 500 else "invalid_request_error"
    )
    return _error(
        fault.status, _ERROR_MESSAGES.get(kind, f"Simulated HTTP {fault.status}."), kind, headers
    )


def _abort(request: web.Request) -> web.StreamResponse:
    """Drop the connection with a TCP RST, sending nothing further."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.StreamResponse()


class AnthropicSimulator:
    """An aiohttp server speaking the Messages API. State lives on its event loop; from
    other threads use the :class:`SimulatorHandle` from :func:`run_in_thread`."""

    def __init__(self, api_key: str = DEFAULT_API_KEY) -> None:
        self.api_key = api_key
        self.config = SimConfig()
        self._faults: collections.deque[Fault] = collections.deque()
        self._sticky: Fault | None = None
        self._script: Script | None = None
        self._requests: collections.deque[JSON] = collections.deque(maxlen=MAX_RECORDED_REQUESTS)
        self._stats = self._zero_stats()
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024**2)
        app.add_routes(
            [
                web.post("/v1/messages", self._messages),
                web.post("/__sim/faults", self._post_faults),
                web.delete("/__sim/faults", self._delete_faults),
                web.post("/__sim/script", self._post_script),
                web.delete("/__sim/script", self._delete_script),
                web.get("/__sim/requests", self._get_requests),
                web.delete("/__sim/requests", self._delete_requests),
                web.get("/__sim/stats", self._get_stats),
                web.post("/__sim/config", self._post_config),
                web.post("/__sim/reset", self._post_reset),
                web.route("*", "/{tail:.*}", self._not_found),
            ]
        )
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1
        )
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
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
        """``base_url`` for the anthropic SDK (and ANTHROPIC_BASE_URL); ``/__sim`` lives here."""
        return f"http://{self._host}:{self.port}"

    # -- control state (call on the server's loop) ---------------------------------------

    def add_faults(self, faults: list[Fault], sticky: bool = False) -> None:
        if sticky and faults:
            self._faults.extend(faults[:-1])
            self._sticky = faults[-1]
        else:
            self._faults.extend(faults)

    def clear_faults(self) -> None:
        self._faults.clear()
        self._sticky = None

    def set_script(self, script: Script | None) -> None:
        self._script = script

    def requests(self) -> list[JSON]:
        return list(self._requests)

    def clear_requests(self) -> None:
        self._requests.clear()

    def stats(self) -> JSON:
        return dict(self._stats)

    def configure(self, **options: Any) -> SimConfig:
        self.config = msgspec.convert({**msgspec.structs.asdict(self.config), **options}, SimConfig)
        return self.config

    def reset(self) -> None:
        self.clear_faults()
        self.clear_requests()
        self._script = None
        self._stats = self._zero_stats()
        self.config = SimConfig()

    @staticmethod
    def _zero_stats() -> dict[str, int]:
        return dict.fromkeys(
            (
                "requests",
                "faults_applied",
                "streams_started",
                "streams_completed",
                "cancelled_streams",
            ),
            0,
        )

    def _next_fault(self) -> Fault | None:
        return self._faults.popleft() if self._faults else self._sticky

    # -- the protocol ----------------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = _decode(raw)
        except msgspec.DecodeError:
            body = None
        # The API takes the key as x-api-key, or (as SDKs from 2026 send it) a Bearer token.
        auth_ok = self.api_key in (
            request.headers.get("x-api-key"),
            request.headers.get("authorization", "").removeprefix("Bearer "),
        )
        self._stats["requests"] += 1
        self._requests.append(
            {
                "method": request.method,
                "path": request.path,
                "headers": {
                    k.lower(): v
                    for k, v in request.headers.items()
                    if k.lower() not in ("x-api-key", "authorization")
                },
                "auth_ok": auth_ok,
                "body": body,
            }
        )
        if not auth_ok:
            return _error(401, "invalid x-api-key")
        version = request.headers.get("anthropic-version")
        if version is None:
            return _error(400, "anthropic-version: header is required")
        if version not in API_VERSIONS:
            return _error(400, f"anthropic-version: invalid version {version!r}")
        try:
            if body is None:
                raise _BadRequest("There was an issue with your request body: invalid JSON")
            _check_body(body)
            if version >= "2026-10-21":
                for name in _REMOVED_IN_2026_10_21:
                    if name in body:
                        raise _BadRequest(
                            f"{name}: this parameter is not supported in API version {version}"
                        )
            reply = (
                _scripted_reply(self._script)
                if self._script is not None
                else _build_reply(body, self.config)
            )
        except _BadRequest as exc:
            return _error(exc.status, exc.message)

        fault = self._next_fault()
        if fault is not None:
            self._stats["faults_applied"] += 1
            if fault.kind == "latency":
                await asyncio.sleep(fault.ms / 1000)
            elif fault.kind == "status":
                return _fault_response(fault)
            elif fault.kind == "timeout":
                await asyncio.get_running_loop().create_future()
            elif fault.kind == "reset":
                return _abort(request)
        headers = {"request-id": _random_id("req_sim")}
        if body.get("stream") is True:
            return await self._stream(request, reply, body["model"], fault, headers)
        payload = _encode(_message_body(reply, body["model"]))
        if fault is not None and fault.kind == "disconnect_mid_stream":
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
        reply: _Reply,
        model: str,
        fault: Fault | None,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        cut = (
            fault.after_events
            if fault and fault.kind in ("disconnect_mid_stream", "error_event")
            else -1
        )
        response = web.StreamResponse(headers={**headers, "cache-control": "no-cache"})
        response.content_type = "text/event-stream"
        response.charset = "utf-8"
        self._stats["streams_started"] += 1
        try:
            await response.prepare(request)
            delay = fault.ms / 1000 if fault is not None and fault.kind == "slow_events" else 0
            for sent, event in enumerate(_stream_events(reply, model)):
                if delay and sent:
                    await asyncio.sleep(delay)
                if sent == cut and fault is not None:
                    if fault.kind == "disconnect_mid_stream":
                        return _abort(request)
                    kind = fault.error_type
                    error = {"type": kind, "message": _ERROR_MESSAGES.get(kind, kind)}
                    await response.write(_sse({"type": "error", "error": error}))
                    return response
                await response.write(event)
            self._stats["streams_completed"] += 1
            return response
        except asyncio.CancelledError:
            # The client went away (handler cancellation) or the server is stopping.
            self._stats["cancelled_streams"] += 1
            raise
        except ConnectionResetError:
            self._stats["cancelled_streams"] += 1
            return response

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error(404, f"Not found: {request.method} {request.path}", "not_found_error")

    # -- control routes ------------------------------------------------------------------

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
            return _json_response({"error": str(exc)}, 400)
        return _json_response({"script": self._script})

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


class SimulatorHandle(SimulatorThread[AnthropicSimulator]):
    """The simulator's controls, callable from the tests' thread."""

    @property
    def base_url(self) -> str:
        return self.simulator.base_url

    @property
    def api_key(self) -> str:
        return self.simulator.api_key

    def add_faults(self, *faults: dict[str, Any] | Fault, sticky: bool = False) -> None:
        parsed = [f if isinstance(f, Fault) else msgspec.convert(f, Fault) for f in faults]
        self._call(lambda: self.simulator.add_faults(parsed, sticky))

    def set_script(self, script: Script | None) -> None:
        self._call(lambda: self.simulator.set_script(script))

    def requests(self) -> list[JSON]:
        return self._call(self.simulator.requests)

    def stats(self) -> JSON:
        return self._call(self.simulator.stats)

    def configure(self, **options: Any) -> SimConfig:
        return self._call(lambda: self.simulator.configure(**options))

    def reset(self) -> None:
        self._call(self.simulator.reset)


def run_in_thread(port: int = 0, api_key: str = DEFAULT_API_KEY) -> SimulatorHandle:
    """Start a simulator on its own event loop in a daemon thread."""
    simulator = AnthropicSimulator(api_key=api_key)
    return SimulatorHandle(simulator, simulator.start("127.0.0.1", port), "anthropic-sim")
