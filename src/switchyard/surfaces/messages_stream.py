"""The Anthropic Messages event stream, from the canonical chat chunk stream.

:class:`MessagesStream` is a small pure state machine: the handler in
:mod:`switchyard.server.messages` feeds it what ``StreamSession.events()`` yields and writes
each event it returns with :func:`event_frame`. Stop reasons, usage and errors are rendered
as for a whole message, by :mod:`switchyard.surfaces.messages`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, cast

from msgspec import UNSET, UnsetType

from switchyard.surfaces.messages import error_detail, stop_reason, to_usage
from switchyard.wire import messages as am
from switchyard.wire.chat import ChatChunk, ToolCallDelta, Usage
from switchyard.wire.codec import encode


@dataclass(slots=True)
class _ToolState:
    id: str = ""
    name: str = ""
    block: int | None = None  # Anthropic block index, once started
    pending: list[str] = field(default_factory=list)  # arguments seen before the name


class MessagesStream:
    """Canonical chat chunks in, the Anthropic stream event sequence out.

    ``start()`` gives ``message_start``; ``feed()`` takes each item of
    ``StreamSession.events()``: ``None`` becomes a ``ping``, deltas open, fill and close
    content blocks (thinking, text, one per tool call), the final usage chunk becomes
    ``message_delta`` + ``message_stop``, an error chunk becomes an ``error`` event.

    Blocks are sent one at a time, as Anthropic does; a new kind of content closes the open
    block. Tool-call deltas are expected in order, as Chat Completions streams them; a late
    delta for an already-closed tool call still goes to its own block index.
    """

    def __init__(
        self,
        message_id: str,
        model: str,
        provider: str | UnsetType = UNSET,
        input_tokens: int = 0,
        stop_sequences: list[str] | None = None,
    ) -> None:
        self._id = message_id
        self._model = model
        self._provider = provider
        self._input_tokens = input_tokens
        self._stop_sequences = stop_sequences or []
        self._next = 0
        self._open: int | None = None
        self._open_kind: str | None = None
        self._tools: dict[int, _ToolState] = {}
        self._finish: str | None = None
        self._native: str | None = None
        self._refused = False
        self.done = False

    def start(self) -> list[am.StreamEvent]:
        message = am.MessagesResult(
            id=self._id,
            model=self._model,
            content=[],
            usage=am.MessagesUsage(input_tokens=self._input_tokens, output_tokens=0),
            provider=self._provider,
        )
        return [am.MessageStartEvent(message=message)]

    def feed(self, chunk: ChatChunk | None) -> list[am.StreamEvent]:
        if self.done:
            return []
        if chunk is None:
            return [am.PingEvent()]
        if not isinstance(chunk.error, UnsetType):
            self.done = True
            error = chunk.error
            return [am.ErrorEvent(error=error_detail(error.code, error.message))]
        events: list[am.StreamEvent] = []
        for choice in chunk.choices:
            if choice.index != 0:
                continue  # Messages has one answer; n > 1 is not a thing there
            delta = choice.delta
            self._reasoning(delta.reasoning, delta.reasoning_details, events)
            if isinstance(delta.content, str) and delta.content:
                self._text(delta.content, events)
            if isinstance(delta.refusal, str) and delta.refusal:
                self._refused = True
                self._text(delta.refusal, events)
            if isinstance(delta.tool_calls, list):
                for call in delta.tool_calls:
                    self._tool_call(call, events)
            if choice.finish_reason is not None:
                self._finish = choice.finish_reason
                self._native = choice.native_finish_reason
        if isinstance(chunk.usage, Usage):
            events.extend(self._finish_message(chunk.usage, chunk.openrouter_metadata))
        return events

    # --- blocks ---

    def _close(self, events: list[am.StreamEvent]) -> None:
        if self._open is not None:
            events.append(am.ContentBlockStopEvent(index=self._open))
            self._open = self._open_kind = None

    def _begin(self, block: am.ContentBlock, kind: str, events: list[am.StreamEvent]) -> int:
        self._close(events)
        index = self._next
        self._next += 1
        events.append(am.ContentBlockStartEvent(index=index, content_block=block))
        self._open, self._open_kind = index, kind
        return index

    def _delta(self, index: int, delta: am.BlockDelta, events: list[am.StreamEvent]) -> None:
        events.append(am.ContentBlockDeltaEvent(index=index, delta=delta))

    def _text(self, text: str, events: list[am.StreamEvent]) -> None:
        index = self._open
        if index is None or self._open_kind != "text":
            index = self._begin(am.TextBlock(text=""), "text", events)
        self._delta(index, am.TextDelta(text=text), events)

    def _thinking(self, text: str, events: list[am.StreamEvent]) -> int:
        index = self._open
        if index is None or self._open_kind != "thinking":
            index = self._begin(am.ThinkingBlock(thinking="", signature=""), "thinking", events)
        if text:
            self._delta(index, am.ThinkingDelta(thinking=text), events)
        return index

    def _reasoning(
        self,
        reasoning: str | None | UnsetType,
        details: list[dict[str, Any]] | UnsetType,
        events: list[am.StreamEvent],
    ) -> None:
        if not isinstance(details, list) or not details:
            # reasoning_details, when sent, repeat the reasoning text with more facts.
            if isinstance(reasoning, str) and reasoning:
                self._thinking(reasoning, events)
            return
        for detail in details:
            kind = detail.get("type")
            if kind == "reasoning.encrypted" and isinstance(detail.get("data"), str):
                self._begin(am.RedactedThinkingBlock(data=detail["data"]), "redacted", events)
                self._close(events)
            elif kind in ("reasoning.text", "reasoning.summary"):
                text = detail.get("text") if kind == "reasoning.text" else detail.get("summary")
                signature = detail.get("signature")
                index = self._thinking(text if isinstance(text, str) else "", events)
                if isinstance(signature, str) and signature:
                    # A signature seals its thinking block; more thinking starts a new one.
                    self._delta(index, am.SignatureDelta(signature=signature), events)
                    self._close(events)

    def _tool_call(self, call: ToolCallDelta, events: list[am.StreamEvent]) -> None:
        state = self._tools.setdefault(call.index, _ToolState())
        if isinstance(call.id, str) and call.id and not state.id:
            state.id = call.id
        fn = call.function
        name = fn.name if not isinstance(fn, UnsetType) else UNSET
        arguments = fn.arguments if not isinstance(fn, UnsetType) else UNSET
        if state.block is None:
            if isinstance(name, str):
                state.name += name
            if isinstance(arguments, str) and arguments:
                state.pending.append(arguments)
            if state.name:
                self._start_tool(state, events)
        elif isinstance(arguments, str) and arguments:
            self._delta(state.block, am.InputJsonDelta(partial_json=arguments), events)

    def _start_tool(self, state: _ToolState, events: list[am.StreamEvent]) -> None:
        block = am.ToolUseBlock(id=state.id or new_tool_use_id(), name=state.name, input={})
        state.block = self._begin(block, "tool_use", events)
        for piece in state.pending:
            self._delta(state.block, am.InputJsonDelta(partial_json=piece), events)
        state.pending.clear()

    def _finish_message(
        self, usage: Usage, metadata: dict[str, Any] | UnsetType
    ) -> list[am.StreamEvent]:
        events: list[am.StreamEvent] = []
        for state in self._tools.values():
            if state.block is None:  # a call whose name never came: still the client's to see
                self._start_tool(state, events)
        self._close(events)
        used_tools = bool(self._tools)
        reason, sequence = stop_reason(
            self._finish, self._native, self._stop_sequences, used_tools, self._refused
        )
        events.append(
            am.MessageDeltaEvent(
                delta=am.MessageDelta(stop_reason=reason, stop_sequence=sequence),
                usage=to_usage(usage),
            )
        )
        events.append(am.MessageStopEvent(openrouter_metadata=metadata))
        self.done = True
        return events


def new_tool_use_id() -> str:
    return f"toolu_{secrets.token_hex(12)}"


def event_frame(event: am.StreamEvent) -> bytes:
    """One SSE frame, named by the event's type as Anthropic's stream does."""
    name = cast(str, event.__struct_config__.tag)
    return b"event: " + name.encode() + b"\ndata: " + encode(event) + b"\n\n"
