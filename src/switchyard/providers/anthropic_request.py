"""Chat request -> Anthropic Messages API request body. No I/O.

What does not translate, and why:
- ``response_format: json_object`` has no Anthropic equivalent (structured outputs need a
  schema), so it is not sent; ``json_schema`` becomes ``output_config.format``.
- ``reasoning.exclude`` is not acted on: the reasoning Claude returns is passed on.
- Temperatures above 1 are sent as 1, the top of Anthropic's range.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

from switchyard.catalog import Endpoint
from switchyard.errors import InvalidRequest
from switchyard.providers.anthropic_response import REASONING_FORMAT, Block
from switchyard.providers.data_url import is_data_url, parse_data_url
from switchyard.wire.chat import (
    AssistantMessage,
    ChatRequest,
    ContentPart,
    DeveloperMessage,
    FilePart,
    ImagePart,
    JsonSchemaFormat,
    NamedToolChoice,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)

__all__ = ["build_body"]

# Used when neither the request nor the catalog gives an output limit (max_tokens is
# required by Anthropic).
FALLBACK_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
# OpenRouter's rule for turning an effort into a thinking budget: a share of max_tokens,
# at least 1024 and at most 32000 tokens.
EFFORT_SHARE = {
    "max": 0.95,
    "xhigh": 0.95,
    "high": 0.8,
    "medium": 0.5,
    "low": 0.2,
    "minimal": 0.1,
}
MAX_EFFORT_BUDGET = 32000

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

# Request parameters forwarded only when the endpoint lists them (or an alias) as supported.
SUPPORT_ALIASES = {
    "reasoning_effort": "reasoning",
    "parallel_tool_calls": "tools",
    "max_completion_tokens": "max_tokens",
}

_decode = msgspec.json.decode


def _supports(supported: frozenset[str], name: str) -> bool:
    return name in supported or SUPPORT_ALIASES.get(name, "") in supported


def build_body(request: ChatRequest, endpoint: Endpoint, supported: frozenset[str]) -> Block:
    system, messages = _translate_messages(request)
    limit = request.output_limit() or endpoint.max_completion_tokens or FALLBACK_MAX_TOKENS
    body: Block = {"model": endpoint.upstream_model, "max_tokens": limit, "messages": messages}
    if system:
        body["system"] = system
    thinking = _thinking(request, limit) if _supports(supported, "reasoning") else None
    if thinking is not None:
        body["thinking"] = thinking
    if isinstance(request.stop, str):
        body["stop_sequences"] = [request.stop]
    elif isinstance(request.stop, list) and request.stop:
        body["stop_sequences"] = request.stop
    # Claude refuses sampling changes while thinking; the budget matters more to the caller.
    if thinking is None:
        if isinstance(request.temperature, float | int) and _supports(supported, "temperature"):
            body["temperature"] = min(float(request.temperature), 1.0)
        if isinstance(request.top_k, int) and _supports(supported, "top_k"):
            body["top_k"] = request.top_k
        if isinstance(request.top_p, float | int) and _supports(supported, "top_p"):
            body["top_p"] = request.top_p
    if request.tools and _supports(supported, "tools"):
        body["tools"] = [_tool(tool) for tool in request.tools]
        choice = _tool_choice(request, thinking is not None)
        if choice is not None:
            body["tool_choice"] = choice
    if isinstance(request.response_format, JsonSchemaFormat) and _supports(
        supported, "structured_outputs"
    ):
        schema = request.response_format.json_schema.schema
        body["output_config"] = {
            "format": {"type": "json_schema", "schema": schema if schema else {"type": "object"}}
        }
    if isinstance(request.user, str):
        body["metadata"] = {"user_id": request.user}
    if isinstance(request.cache_control, dict):
        body["cache_control"] = request.cache_control
    return body


def _thinking(request: ChatRequest, max_tokens: int) -> Block | None:
    reasoning = request.reasoning
    effort = request.reasoning_effort if isinstance(request.reasoning_effort, str) else None
    budget: int | None = None
    enabled = effort is not None
    if reasoning is not UNSET:
        if isinstance(reasoning.effort, str):
            effort, enabled = reasoning.effort, True
        if isinstance(reasoning.max_tokens, int):
            budget, enabled = reasoning.max_tokens, True
        if reasoning.enabled is True:
            enabled = True
        if reasoning.enabled is False:
            return None
    if not enabled or effort == "none":
        return None
    if budget is None:
        share = EFFORT_SHARE.get(effort or "medium", EFFORT_SHARE["medium"])
        budget = min(int(max_tokens * share), MAX_EFFORT_BUDGET)
    budget = max(budget, MIN_THINKING_BUDGET)
    if budget >= max_tokens:
        raise InvalidRequest(
            f"Reasoning on Anthropic models needs max_tokens above the thinking budget "
            f"({budget} tokens, at least {MIN_THINKING_BUDGET}); max_tokens is {max_tokens}",
            field="max_tokens",
        )
    return {"type": "enabled", "budget_tokens": budget}


def _tool(tool: Any) -> Block:
    fn = tool.function
    out: Block = {
        "name": fn.name,
        "input_schema": fn.parameters if fn.parameters else {"type": "object", "properties": {}},
    }
    if isinstance(fn.description, str):
        out["description"] = fn.description
    if fn.strict is True:
        out["strict"] = True
    if isinstance(tool.cache_control, dict):
        out["cache_control"] = tool.cache_control
    return out


def _tool_choice(request: ChatRequest, thinking: bool) -> Block | None:
    choice = request.tool_choice
    out: Block | None
    if choice is UNSET or choice == "auto":
        out = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, NamedToolChoice):
        out = {"type": "tool", "name": choice.function.name}
    else:  # pragma: no cover - the wire type admits nothing else
        return None
    if thinking and out["type"] != "auto":
        raise InvalidRequest(
            "Anthropic models cannot be made to call a tool while reasoning; use tool_choice"
            " auto or turn reasoning off",
            field="tool_choice",
        )
    if request.parallel_tool_calls is False:
        out["disable_parallel_tool_use"] = True
    elif choice is UNSET:
        return None  # Anthropic's default is auto with parallel calls: nothing to say
    return out


def _translate_messages(request: ChatRequest) -> tuple[list[Block], list[Block]]:
    """System blocks, and turns that alternate user / assistant (same-role turns merged)."""
    system: list[Block] = []
    turns: list[Block] = []

    def add(role: str, blocks: list[Block]) -> None:
        if not blocks:
            return  # Anthropic refuses empty turns; an empty one says nothing anyway
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for i, message in enumerate(request.messages):
        if isinstance(message, SystemMessage | DeveloperMessage):
            system.extend(_text_blocks(message.content))
        elif isinstance(message, UserMessage):
            add("user", _user_blocks(message.content, f"messages[{i}]"))
        elif isinstance(message, ToolMessage):
            result: Block = {"type": "tool_result", "tool_use_id": message.tool_call_id}
            content = _user_blocks(message.content, f"messages[{i}]")
            if content:
                result["content"] = content
            add("user", [result])
        elif isinstance(message, AssistantMessage):
            add("assistant", _assistant_blocks(message, f"messages[{i}]"))
    return system, turns


def _text_blocks(content: str | list[TextPart]) -> list[Block]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [_text_block(part) for part in content if part.text]


def _text_block(part: TextPart) -> Block:
    block: Block = {"type": "text", "text": part.text}
    if isinstance(part.cache_control, dict):
        block["cache_control"] = part.cache_control
    return block


def _user_blocks(content: str | list[ContentPart], where: str) -> list[Block]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[Block] = []
    for j, part in enumerate(content):
        if isinstance(part, TextPart):
            if part.text:
                blocks.append(_text_block(part))
        elif isinstance(part, ImagePart):
            blocks.append(_image_block(part.image_url.url, f"{where}.content[{j}].image_url.url"))
        elif isinstance(part, FilePart):
            blocks.append(_document_block(part.file, f"{where}.content[{j}].file"))
        else:
            kind = part.__struct_config__.tag
            raise InvalidRequest(
                f"Anthropic models do not accept `{kind}` content parts",
                field=f"{where}.content[{j}]",
            )
    return blocks


def _image_block(url: str, where: str) -> Block:
    if not is_data_url(url):
        return {"type": "image", "source": {"type": "url", "url": url}}
    inline = parse_data_url(url, where)
    if inline.media_type not in IMAGE_TYPES:
        raise InvalidRequest(
            f"`{where}` has media type {inline.media_type!r}; Anthropic accepts "
            + ", ".join(sorted(IMAGE_TYPES)),
            field=where,
        )
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": inline.media_type, "data": inline.data},
    }


def _document_block(file: dict[str, Any], where: str) -> Block:
    """PDFs (inline or by URL) and plain text become Anthropic document blocks."""
    data = file.get("file_data")
    field = f"{where}.file_data"
    if not isinstance(data, str) or not data:
        raise InvalidRequest(
            f"`{field}` is required: Anthropic has no store of uploaded files", field=field
        )
    source: Block
    if is_data_url(data):
        inline = parse_data_url(data, field)
        if inline.media_type == "application/pdf":
            source = {"type": "base64", "media_type": inline.media_type, "data": inline.data}
        elif inline.media_type == "text/plain":
            try:
                text = inline.decoded().decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequest(f"`{field}` is not UTF-8 text", field=field) from None
            source = {"type": "text", "media_type": inline.media_type, "data": text}
        else:
            raise InvalidRequest(
                f"`{field}` has media type {inline.media_type!r}; Anthropic reads"
                " application/pdf and text/plain documents",
                field=field,
            )
    elif data[:8].lower() == "https://" or data[:7].lower() == "http://":
        source = {"type": "url", "url": data}
    else:
        raise InvalidRequest(f"`{field}` must be a data: URL or an http(s) URL", field=field)
    block: Block = {"type": "document", "source": source}
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def _assistant_blocks(message: AssistantMessage, where: str) -> list[Block]:
    blocks: list[Block] = []
    # Thinking must lead the turn, and only Claude's own (signed) thinking is accepted back.
    if message.reasoning_details is not UNSET:
        for detail in message.reasoning_details:
            block = _thinking_block(detail)
            if block is not None:
                blocks.append(block)
    content = message.content
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        blocks.extend(_user_blocks(content, where))
    if message.tool_calls is not UNSET:
        for k, call in enumerate(message.tool_calls):
            field = f"{where}.tool_calls[{k}].function.arguments"
            try:
                arguments = _decode(call.function.arguments) if call.function.arguments else {}
            except msgspec.DecodeError:
                raise InvalidRequest(f"`{field}` is not valid JSON", field=field) from None
            if not isinstance(arguments, dict):
                raise InvalidRequest(f"`{field}` must encode a JSON object", field=field)
            blocks.append(
                {"type": "tool_use", "id": call.id, "name": call.function.name, "input": arguments}
            )
    return blocks


def _thinking_block(detail: dict[str, Any]) -> Block | None:
    if detail.get("format") not in (REASONING_FORMAT, None):
        return None  # another vendor's reasoning: its signature would not verify here
    kind = detail.get("type")
    if kind == "reasoning.text" and isinstance(detail.get("signature"), str):
        return {
            "type": "thinking",
            "thinking": detail.get("text") or "",
            "signature": detail["signature"],
        }
    if kind == "reasoning.encrypted" and isinstance(detail.get("data"), str):
        return {"type": "redacted_thinking", "data": detail["data"]}
    return None
