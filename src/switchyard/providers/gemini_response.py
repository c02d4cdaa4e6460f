"""Gemini ``GenerateContentResponse`` (whole, or one stream event) -> canonical chat. No I/O.

A streamed response is a server-sent event per partial ``GenerateContentResponse`` (no
``[DONE]``: the stream simply ends), so the stream parser keeps its own memory across events.
Finish reasons, usage and Gemini's thought signatures are translated here too.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import UNSET, Struct

from switchyard.providers.base import StreamState
from switchyard.wire.chat import (
    REASONING_FORMAT_GEMINI,
    ChatChunk,
    ChatResult,
    Choice,
    CompletionTokensDetails,
    Delta,
    FunctionCall,
    FunctionCallDelta,
    PromptTokensDetails,
    ResponseMessage,
    StreamChoice,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# Gemini's FinishReason (and BlockedReason, for prompts refused outright) in canonical terms.
# STOP becomes tool_calls when the candidate called functions. Anything not listed (OTHER,
# LANGUAGE, MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, ...) ended the turn without an
# answer, which OpenRouter reports as "error"; the native value is kept beside it.
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
}

# OpenRouter's reasoning_details entry carrying a Gemini thought signature for a tool call.
SIGNATURE_FORMAT = REASONING_FORMAT_GEMINI

_json_encode = msgspec.json.encode


# --- response parsing ---------------------------------------------------------------------


class _FunctionCall(Struct):
    name: str
    args: dict[str, Any] = {}
    id: str | None = None


class _Part(Struct, rename="camel"):
    text: str | None = None
    thought: bool = False
    thought_signature: str | None = None
    function_call: _FunctionCall | None = None


class _Content(Struct):
    parts: list[_Part] = []
    role: str | None = None


class _Candidate(Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None
    index: int = 0


class _PromptFeedback(Struct, rename="camel"):
    block_reason: str | None = None


class _UsageMetadata(Struct, rename="camel"):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int = 0
    cached_content_token_count: int = 0
    tool_use_prompt_token_count: int = 0


class _Response(Struct, rename="camel"):
    candidates: list[_Candidate] = []
    prompt_feedback: _PromptFeedback | None = None
    usage_metadata: _UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None
    error: dict[str, Any] | None = None  # an error sent in place of a response


response_decoder = msgspec.json.Decoder(_Response)


class _Output:
    """What one response (or stream event) said, in canonical pieces."""

    __slots__ = ("calls", "reasoning", "signatures", "text")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[tuple[str, FunctionCall]] = []
        self.signatures: list[dict[str, Any]] = []


def _read_parts(candidate: _Candidate | None, first_call: int) -> _Output:
    out = _Output()
    if candidate is None or candidate.content is None:
        return out
    for part in candidate.content.parts:
        if part.function_call is not None:
            call = part.function_call
            # The Gemini API often gives no call id; number them within the response.
            call_id = call.id or f"call_{first_call + len(out.calls)}"
            out.calls.append((call_id, FunctionCall(call.name, _json_encode(call.args).decode())))
            if part.thought_signature:
                out.signatures.append(
                    {
                        "type": "reasoning.encrypted",
                        "data": part.thought_signature,
                        "id": call_id,
                        "format": SIGNATURE_FORMAT,
                        "index": len(out.signatures),
                    }
                )
        elif part.text is not None:
            (out.reasoning if part.thought else out.text).append(part.text)
    return out


def normalise_finish(native: str | None, called_functions: bool = False) -> str | None:
    if native is None:
        return None
    if native == "STOP":
        return "tool_calls" if called_functions else "stop"
    return FINISH_REASONS.get(native, "error")


def _native_finish(response: _Response, candidate: _Candidate | None) -> tuple[str | None, bool]:
    """The native finish reason, and whether it is a blocked prompt (always a filter)."""
    if candidate is not None and candidate.finish_reason is not None:
        return candidate.finish_reason, False
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        return feedback.block_reason, True
    return None, False


def to_usage(meta: _UsageMetadata) -> Usage:
    # Canonical prompt tokens count every input token (cached ones and the prompt a tool
    # use added); completion tokens count thinking too, which Gemini reports apart.
    prompt = meta.prompt_token_count + meta.tool_use_prompt_token_count
    completion = meta.candidates_token_count + meta.thoughts_token_count
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=meta.cached_content_token_count),
        completion_tokens_details=CompletionTokensDetails(
            reasoning_tokens=meta.thoughts_token_count
        ),
    )


def _response_id(response: _Response) -> str:
    return response.response_id or "gen-" + os.urandom(12).hex()


def to_result(response: _Response) -> ChatResult:
    candidate = response.candidates[0] if response.candidates else None
    out = _read_parts(candidate, 0)
    native, blocked = _native_finish(response, candidate)
    finish = "content_filter" if blocked else normalise_finish(native, bool(out.calls))
    message = ResponseMessage(content="".join(out.text) if out.text else None)
    if out.reasoning:
        message.reasoning = "".join(out.reasoning)
    if out.calls:
        message.tool_calls = [ToolCall(call_id, function) for call_id, function in out.calls]
    if out.signatures:
        message.reasoning_details = out.signatures
    return ChatResult(
        id=_response_id(response),
        created=int(time.time()),
        model=response.model_version or "",
        choices=[Choice(0, message, finish, native)],
        usage=to_usage(response.usage_metadata) if response.usage_metadata else UNSET,
    )


# --- stream parsing -----------------------------------------------------------------------


@dataclass(slots=True)
class _StreamMemory:
    id: str
    created: int
    calls: int = 0  # function calls seen so far: the next call's index
    started: bool = False
    finished: bool = False
    usage: _UsageMetadata | None = None


def to_chunks(response: _Response, state: StreamState) -> list[ChatChunk]:
    """One chunk per event with its deltas and finish reason, then a usage chunk once the
    stream has finished (Gemini repeats usageMetadata; the latest figures win)."""
    memory = state.extra.get("gemini")
    if not isinstance(memory, _StreamMemory):
        memory = state.extra["gemini"] = _StreamMemory(_response_id(response), int(time.time()))
    candidate = response.candidates[0] if response.candidates else None
    out = _read_parts(candidate, memory.calls)
    native, blocked = _native_finish(response, candidate)
    if response.usage_metadata is not None:
        memory.usage = response.usage_metadata
    model = response.model_version or ""
    chunks: list[ChatChunk] = []
    delta = Delta()
    if not memory.started:
        memory.started = True
        delta.role = "assistant"
    if out.text:
        delta.content = "".join(out.text)
    if out.reasoning:
        delta.reasoning = "".join(out.reasoning)
    if out.signatures:
        delta.reasoning_details = out.signatures
    if out.calls:
        # Gemini sends each call whole, so one delta carries its full arguments.
        delta.tool_calls = [
            ToolCallDelta(
                index=memory.calls + n,
                id=call_id,
                type="function",
                function=FunctionCallDelta(function.name, function.arguments),
            )
            for n, (call_id, function) in enumerate(out.calls)
        ]
        memory.calls += len(out.calls)
    finish = "content_filter" if blocked else normalise_finish(native, memory.calls > 0)
    if delta != Delta() or finish is not None:
        choice = StreamChoice(0, delta, finish, native)
        chunks.append(ChatChunk(memory.id, memory.created, model, [choice]))
    if finish is not None:
        memory.finished = True
    if (
        memory.finished
        and memory.usage is not None
        and (finish is not None or response.usage_metadata is not None)
    ):
        state.usage_seen = True
        usage = to_usage(memory.usage)
        chunks.append(ChatChunk(memory.id, memory.created, model, [], usage=usage))
    return chunks
