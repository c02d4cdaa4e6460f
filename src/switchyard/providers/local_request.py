"""Chat request -> llama.cpp's chat messages, raw prompt and sampling arguments. No I/O.

Base models: a model whose catalog ``architecture.instruct_type`` is ``none`` (OpenRouter's
value for "no instruction format") has no chat template. It is given the raw text of the
messages, joined by blank lines, with no roles or markers: a single user message, which is
what the legacy completions surface sends, reaches the model exactly as the client wrote it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

from switchyard.catalog import Endpoint
from switchyard.errors import UpstreamError
from switchyard.wire.chat import (
    AssistantMessage,
    ChatRequest,
    GrammarFormat,
    JsonObjectFormat,
    JsonSchemaFormat,
    TextPart,
    ToolMessage,
)


def _text(content: Any) -> str:
    if content is None or content is UNSET:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if isinstance(part, TextPart))


def to_llama_messages(request: ChatRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        role = message.__struct_config__.tag
        # llama.cpp templates have no "developer" role; it is a system prompt by another name.
        item: dict[str, Any] = {
            "role": "system" if role == "developer" else role,
            "content": _text(message.content),
        }
        if isinstance(message, AssistantMessage) and message.tool_calls:
            item["tool_calls"] = msgspec.to_builtins(message.tool_calls)
        if isinstance(message, ToolMessage):
            item["tool_call_id"] = message.tool_call_id
        messages.append(item)
    return messages


def to_raw_prompt(request: ChatRequest) -> str:
    """A base model's input: the messages' text in order, without roles or template."""
    return "\n\n".join(_text(message.content) for message in request.messages)


def to_llama_kwargs(
    request: ChatRequest, endpoint: Endpoint, defaults: dict[str, Any]
) -> dict[str, Any]:
    def pick(value: Any, default: Any) -> Any:
        return default if value is UNSET or value is None else value

    kwargs: dict[str, Any] = {
        "temperature": pick(request.temperature, defaults.get("temperature", 0.2)),
        "top_p": pick(request.top_p, defaults.get("top_p", 0.95)),
        "top_k": pick(request.top_k, 40),
        "min_p": pick(request.min_p, 0.05),
        "presence_penalty": pick(request.presence_penalty, 0.0),
        "frequency_penalty": pick(request.frequency_penalty, 0.0),
        "repeat_penalty": pick(request.repetition_penalty, 1.0),
        "max_tokens": request.output_limit() or endpoint.max_completion_tokens,
    }
    if isinstance(request.seed, int):
        kwargs["seed"] = request.seed
    stop = request.stop
    if isinstance(stop, str):
        kwargs["stop"] = [stop]
    elif isinstance(stop, list):
        kwargs["stop"] = stop
    if isinstance(request.logit_bias, dict):
        try:
            kwargs["logit_bias"] = {int(k): v for k, v in request.logit_bias.items()}
        except ValueError:
            raise UpstreamError(
                "logit_bias keys must be token ids (integers)",
                provider="Switchyard Local",
                status=400,
                retryable=False,
            ) from None
    fmt = request.response_format
    if isinstance(fmt, JsonObjectFormat):
        kwargs["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, JsonSchemaFormat):
        schema = fmt.json_schema.schema
        kwargs["response_format"] = {
            "type": "json_object",
            "schema": schema if isinstance(schema, dict) else {"type": "object"},
        }
    elif isinstance(fmt, GrammarFormat):
        from llama_cpp.llama_grammar import LlamaGrammar

        kwargs["grammar"] = LlamaGrammar.from_string(fmt.grammar, verbose=False)
    return kwargs


def uses_tools(request: ChatRequest) -> bool:
    return bool(request.tools) and request.tool_choice != "none"


def top_logprobs(request: ChatRequest) -> int | None:
    """How many alternatives each token's logprobs should list; None: no logprobs at all."""
    if request.logprobs is not True:
        return None
    return request.top_logprobs if isinstance(request.top_logprobs, int) else 0
