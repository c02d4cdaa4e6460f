"""Anthropic Messages answers: a canonical chat result as an Anthropic message, and errors
in Anthropic's shape.

Pure functions; the HTTP side lives in :mod:`switchyard.server.messages`, the request side in
:mod:`switchyard.surfaces.messages_request`, and the stream, which renders its stop reason,
usage and errors with the functions here, in :mod:`switchyard.surfaces.messages_stream`.

Thinking, which travels as ``reasoning_details``, comes back as thinking blocks (a signed
``reasoning.text`` as a thinking block, ``reasoning.encrypted`` as redacted thinking); which
stop sequence matched is only known when the upstream says so.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from switchyard.errors import SwitchyardError
from switchyard.wire import messages as am
from switchyard.wire.chat import ChatResult, Usage
from switchyard.wire.chat import CostDetails as ChatCostDetails
from switchyard.wire.codec import encode

_json_decoder = msgspec.json.Decoder()


# --- response -------------------------------------------------------------------------------


def to_messages_result(result: ChatResult, stop_sequences: list[str]) -> am.MessagesResult:
    """The Anthropic Message for a completed chat result (first choice)."""
    choice = result.choices[0] if result.choices else None
    content: list[am.ContentBlock] = []
    refused = False
    finish: str | None = None
    native: str | None = None
    if choice is not None:
        message = choice.message
        finish, native = choice.finish_reason, choice.native_finish_reason
        content.extend(_thinking_blocks(message.reasoning, message.reasoning_details))
        if message.content:
            content.append(am.TextBlock(text=message.content))
        if isinstance(message.refusal, str) and message.refusal:
            refused = True
            content.append(am.TextBlock(text=message.refusal))
        for call in message.tool_calls or ():
            content.append(
                am.ToolUseBlock(
                    id=call.id, name=call.function.name, input=tool_input(call.function.arguments)
                )
            )
    used_tools = any(isinstance(block, am.ToolUseBlock) for block in content)
    reason, sequence = stop_reason(finish, native, stop_sequences, used_tools, refused)
    usage = result.usage
    return am.MessagesResult(
        id=result.id,
        model=result.model,
        content=content,
        usage=to_usage(usage) if isinstance(usage, Usage) else am.MessagesUsage(0, 0),
        stop_reason=reason,
        stop_sequence=sequence,
        provider=result.provider,
        openrouter_metadata=result.openrouter_metadata,
    )


def _thinking_blocks(
    reasoning: str | None | UnsetType, details: list[dict[str, Any]] | UnsetType
) -> list[am.ContentBlock]:
    blocks: list[am.ContentBlock] = []
    for detail in details if isinstance(details, list) else ():
        kind = detail.get("type")
        if kind == "reasoning.encrypted" and isinstance(detail.get("data"), str):
            blocks.append(am.RedactedThinkingBlock(data=detail["data"]))
        elif kind in ("reasoning.text", "reasoning.summary"):
            text = detail.get("text") if kind == "reasoning.text" else detail.get("summary")
            signature = detail.get("signature")
            blocks.append(
                am.ThinkingBlock(
                    thinking=text if isinstance(text, str) else "",
                    signature=signature if isinstance(signature, str) else "",
                )
            )
    if not blocks and isinstance(reasoning, str) and reasoning:
        blocks.append(am.ThinkingBlock(thinking=reasoning, signature=""))
    return blocks


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's arguments as the object Anthropic's ``input`` must be.

    Arguments that are not a JSON object (a small model's broken output) are kept whole
    under ``_raw_arguments`` rather than dropped, so the client sees what the model said.
    """
    if not arguments.strip():
        return {}
    try:
        value = _json_decoder.decode(arguments)
    except msgspec.DecodeError:
        return {"_raw_arguments": arguments}
    return value if isinstance(value, dict) else {"_raw_arguments": arguments}


def stop_reason(
    finish: str | None,
    native: str | None,
    stop_sequences: list[str],
    used_tools: bool = False,
    refused: bool = False,
) -> tuple[am.StopReason, str | None]:
    """Anthropic's stop_reason and stop_sequence for a chat finish_reason."""
    if finish == "length":
        return "max_tokens", None
    if finish == "content_filter" or refused:
        return "refusal", None
    if finish == "tool_calls" or used_tools:
        return "tool_use", None
    if native == "stop_sequence" and stop_sequences:
        # The upstream says a stop sequence matched; which one is certain only if one was sent.
        return "stop_sequence", stop_sequences[0] if len(stop_sequences) == 1 else None
    return "end_turn", None


def to_usage(usage: Usage) -> am.MessagesUsage:
    """Anthropic counts cached and cache-written prompt tokens apart from ``input_tokens``."""
    prompt = usage.prompt_tokens_details
    cached = prompt.cached_tokens if prompt else 0
    written = prompt.cache_write_tokens if prompt else 0
    written = written if isinstance(written, int) else 0
    completion = usage.completion_tokens_details
    return am.MessagesUsage(
        input_tokens=max(usage.prompt_tokens - cached - written, 0),
        output_tokens=usage.completion_tokens,
        cache_read_input_tokens=cached,
        cache_creation_input_tokens=written,
        output_tokens_details=am.OutputTokensDetails(
            thinking_tokens=completion.reasoning_tokens if completion else 0
        ),
        cost=usage.cost,
        is_byok=usage.is_byok,
        cost_details=_cost_details(usage.cost_details),
    )


def _cost_details(details: ChatCostDetails | None | UnsetType) -> am.CostDetails | None | UnsetType:
    if not isinstance(details, ChatCostDetails):
        return details
    return am.CostDetails(
        upstream_inference_cost=details.upstream_inference_cost,
        upstream_inference_prompt_cost=details.upstream_inference_prompt_cost,
        upstream_inference_completions_cost=details.upstream_inference_completions_cost,
    )


# --- errors ---------------------------------------------------------------------------------

# Our status -> (Anthropic error type, OpenRouter's canonical error_type).
ERROR_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "authentication"),
    402: ("billing_error", "payment_required"),
    403: ("permission_error", "permission_denied"),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "invalid_request"),
    408: ("timeout_error", "timeout"),
    413: ("invalid_request_error", "payload_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("api_error", "server"),
    502: ("api_error", "provider_unavailable"),
    503: ("overloaded_error", "provider_unavailable"),
    504: ("timeout_error", "timeout"),
    529: ("overloaded_error", "provider_overloaded"),
}


def error_detail(status: int, message: str) -> am.ErrorDetail:
    kind, canonical = ERROR_TYPES.get(
        status,
        ("invalid_request_error", "invalid_request") if status < 500 else ("api_error", "server"),
    )
    return am.ErrorDetail(type=kind, message=message, error_type=canonical)


def error_body(exc: SwitchyardError, request_id: str | None) -> bytes:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}``, our metadata kept."""
    return encode(
        am.ErrorResponse(
            error=error_detail(exc.status, exc.message),
            request_id=request_id,
            metadata=exc.metadata if exc.metadata else UNSET,
        )
    )
