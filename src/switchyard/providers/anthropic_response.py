"""Anthropic Messages API response (whole, or stream events) -> canonical chat. No I/O.

Claude's thinking becomes ``reasoning`` and ``reasoning_details`` (signatures kept, so the
request builder can send them back), stop reasons and usage become their canonical forms,
and a per-stream translator remembers which content block is which tool call.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from switchyard.providers.base import StreamState
from switchyard.wire.chat import (
    REASONING_FORMAT_ANTHROPIC,
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

__all__ = [
    "REASONING_FORMAT",
    "Block",
    "StreamTranslator",
    "event_decoder",
    "message_decoder",
    "normalise_stop",
    "parse_message",
]

# OpenRouter's reasoning_details format for Claude's thinking; the request builder sends
# back only details in this format (another vendor's signature would not verify).
REASONING_FORMAT = REASONING_FORMAT_ANTHROPIC

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

Block = dict[str, Any]  # a JSON object of Anthropic's: content block, delta, error


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int = 0
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    output_tokens_details: dict[str, Any] | None = None


class _Message(msgspec.Struct):
    id: str
    model: str
    content: list[Block]
    usage: _Usage
    stop_reason: str | None = None


class _Event(msgspec.Struct):
    """Any stream event; the fields a type does not use stay None."""

    type: str
    index: int | None = None
    message: _Message | None = None
    content_block: Block | None = None
    delta: Block | None = None
    usage: _Usage | None = None
    error: Block | None = None


message_decoder = msgspec.json.Decoder(_Message)
event_decoder = msgspec.json.Decoder(_Event)
_encode = msgspec.json.encode


# --- response parsing ---------------------------------------------------------------------


def normalise_stop(native: str | None) -> str | None:
    if native is None:
        return None
    return STOP_REASONS.get(native, "stop")


def _usage(usage: _Usage, input_usage: _Usage | None = None) -> Usage:
    """Canonical usage: prompt tokens count cache reads and writes too."""
    source = input_usage or usage

    def pick(name: str) -> int:
        value = getattr(usage, name)
        if value is None:
            value = getattr(source, name)
        return value or 0

    read = pick("cache_read_input_tokens")
    written = pick("cache_creation_input_tokens")
    prompt = pick("input_tokens") + read + written
    details = usage.output_tokens_details or {}
    thinking = details.get("thinking_tokens")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=usage.output_tokens,
        total_tokens=prompt + usage.output_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=read, cache_write_tokens=written),
        completion_tokens_details=CompletionTokensDetails(
            reasoning_tokens=thinking if isinstance(thinking, int) else 0
        ),
    )


def _reasoning_detail(block: Block, index: int) -> dict[str, Any] | None:
    if block.get("type") == "thinking":
        return {
            "type": "reasoning.text",
            "text": block.get("thinking", ""),
            "signature": block.get("signature") or None,
            "format": REASONING_FORMAT,
            "index": index,
        }
    if block.get("type") == "redacted_thinking":
        return {
            "type": "reasoning.encrypted",
            "data": block.get("data", ""),
            "format": REASONING_FORMAT,
            "index": index,
        }
    return None


def parse_message(message: _Message) -> ChatResult:
    texts: list[str] = []
    reasoning: list[str] = []
    details: list[dict[str, Any]] = []
    calls: list[ToolCall] = []
    for block in message.content:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            arguments = _encode(block.get("input") or {}).decode()
            calls.append(ToolCall(id=block["id"], function=FunctionCall(block["name"], arguments)))
        else:
            detail = _reasoning_detail(block, len(details))
            if detail is not None:
                details.append(detail)
                if kind == "thinking":
                    reasoning.append(detail["text"])
    response = ResponseMessage(content="".join(texts) if texts or not calls else None)
    if details:
        response.reasoning = "".join(reasoning)
        response.reasoning_details = details
    if calls:
        response.tool_calls = calls
    return ChatResult(
        id=message.id,
        created=int(time.time()),
        model=message.model,
        choices=[
            Choice(
                index=0,
                message=response,
                finish_reason=normalise_stop(message.stop_reason),
                native_finish_reason=message.stop_reason,
            )
        ],
        usage=_usage(message.usage),
    )


# --- stream parsing -----------------------------------------------------------------------


class StreamTranslator:
    """Per-stream memory: the message's id, its input usage, and which Anthropic content
    block is which tool call or reasoning detail (clients count tool calls from 0)."""

    __slots__ = ("created", "details", "id", "input_usage", "model", "tool_index")

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self.input_usage: _Usage | None = None
        self.tool_index: dict[int, int] = {}  # block index -> tool call index
        self.details: dict[int, int] = {}  # block index -> reasoning detail index

    @classmethod
    def of(cls, state: StreamState) -> StreamTranslator:
        found = state.extra.get("anthropic")
        if not isinstance(found, StreamTranslator):
            found = state.extra["anthropic"] = cls()
        return found

    def _chunk(
        self, delta: Delta, finish: str | None = None, native: str | None = None
    ) -> ChatChunk:
        return ChatChunk(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[
                StreamChoice(
                    index=0, delta=delta, finish_reason=finish, native_finish_reason=native
                )
            ],
        )

    def translate(self, event: _Event) -> list[ChatChunk]:
        kind = event.type
        if kind == "content_block_delta" and event.delta is not None and event.index is not None:
            return self._block_delta(event.index, event.delta)
        if kind == "content_block_start" and event.content_block is not None:
            return self._block_start(event.index or 0, event.content_block)
        if kind == "message_start" and event.message is not None:
            self.id = event.message.id
            self.model = event.message.model
            self.input_usage = event.message.usage
            # Usage so far (the prompt), so that a stream cut short is still charged for
            # its prompt; message_delta's final figures replace it.
            return [self._chunk(Delta(role="assistant", content="")), self._usage_chunk(None)]
        if kind == "message_delta":
            return self._message_delta(event)
        # content_block_stop, message_stop, ping and event types added later carry nothing.
        return []

    def _block_start(self, index: int, block: Block) -> list[ChatChunk]:
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            return [self._chunk(Delta(content=text))] if text else []
        if kind == "tool_use":
            call = self.tool_index[index] = len(self.tool_index)
            delta = ToolCallDelta(
                index=call,
                id=block.get("id", ""),
                type="function",
                function=FunctionCallDelta(name=block.get("name", ""), arguments=""),
            )
            return [self._chunk(Delta(tool_calls=[delta]))]
        if kind in ("thinking", "redacted_thinking"):
            number = self.details[index] = len(self.details)
            if kind == "redacted_thinking":
                detail = _reasoning_detail(block, number)
                return [self._chunk(Delta(reasoning_details=[detail]))] if detail else []
            text = block.get("thinking")
            if text:
                return [self._reasoning(number, text=text)]
        return []

    def _reasoning(self, number: int, *, text: str = "", signature: str | None = None) -> ChatChunk:
        detail: dict[str, Any] = {"type": "reasoning.text", "text": text}
        if signature is not None:
            detail["signature"] = signature
        detail["format"] = REASONING_FORMAT
        detail["index"] = number
        return self._chunk(Delta(reasoning=text, reasoning_details=[detail]))

    def _block_delta(self, index: int, delta: Block) -> list[ChatChunk]:
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk(Delta(content=delta.get("text", "")))]
        if kind == "input_json_delta":
            fragment = delta.get("partial_json", "")
            call = self.tool_index.get(index)
            if not fragment or call is None:
                return []
            tool = ToolCallDelta(index=call, function=FunctionCallDelta(arguments=fragment))
            return [self._chunk(Delta(tool_calls=[tool]))]
        if kind == "thinking_delta":
            number = self.details.setdefault(index, len(self.details))
            return [self._reasoning(number, text=delta.get("thinking", ""))]
        if kind == "signature_delta":
            number = self.details.setdefault(index, len(self.details))
            return [self._reasoning(number, signature=delta.get("signature", ""))]
        return []  # citations_delta and later kinds: nothing in the Chat Completions shape

    def _message_delta(self, event: _Event) -> list[ChatChunk]:
        chunks: list[ChatChunk] = []
        native = (event.delta or {}).get("stop_reason")
        if isinstance(native, str):
            chunks.append(self._chunk(Delta(), normalise_stop(native), native))
        if event.usage is not None:
            chunks.append(self._usage_chunk(event.usage))
        return chunks

    def _usage_chunk(self, usage: _Usage | None) -> ChatChunk:
        return ChatChunk(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[],
            usage=_usage(usage or self.input_usage or _Usage(), self.input_usage),
        )
