"""The Responses event stream, from the canonical chat chunk stream.

:class:`ResponseStream` is a pure state machine: the handler feeds it what
``StreamSession.events()`` yields and writes the events it returns as SSE. It keeps the
order OpenAI's own stream has, which the openai SDK's ``responses.stream()`` helper checks:
``response.created`` and ``response.in_progress`` first; each output item announced by
``output_item.added``, filled by deltas and closed by its ``.done`` events; then exactly
one of ``response.completed``, ``response.incomplete`` or ``response.failed``, carrying the
whole response.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from switchyard.surfaces.responses import (
    choice_logprobs,
    finish_status,
    item_id,
    reasoning_item,
    response_id,
    response_usage,
)
from switchyard.surfaces.responses_request import Translation
from switchyard.wire.chat import ChatChunk, StreamError, ToolCallDelta, Usage
from switchyard.wire.responses import (
    ContentPartAdded,
    ContentPartDone,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    FunctionCallItem,
    ItemStatus,
    MessageItem,
    OutputItem,
    OutputItemAdded,
    OutputItemDone,
    OutputTextDelta,
    OutputTextDone,
    OutputTextPart,
    ReasoningItem,
    ReasoningSummaryPartAdded,
    ReasoningSummaryPartDone,
    ReasoningSummaryTextDelta,
    ReasoningSummaryTextDone,
    RefusalDelta,
    RefusalDone,
    RefusalPart,
    Response,
    ResponseCompleted,
    ResponseCreated,
    ResponseError,
    ResponseEvent,
    ResponseFailed,
    ResponseIncomplete,
    ResponseInProgress,
    ResponseStatus,
    SummaryTextPart,
)


@dataclass(slots=True)
class _OpenReasoning:
    id: str
    index: int
    text: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _OpenPart:
    kind: Literal["output_text", "refusal"]
    index: int
    text: list[str] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _OpenMessage:
    id: str
    index: int
    parts: dict[str, _OpenPart] = field(default_factory=dict)


@dataclass(slots=True)
class _OpenCall:
    id: str
    index: int
    call_id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class ResponseStream:
    """Turns the canonical chunk stream into Responses events, in the order OpenAI sends
    them: each output item is added, filled by deltas and marked done before the next one
    starts (function calls, which may interleave, stay open until something else begins).
    """

    def __init__(
        self, translation: Translation, generation_id: str, model: str, created_at: int
    ) -> None:
        self._want_logprobs = translation.want_logprobs
        self._base = msgspec.structs.replace(
            translation.template,
            id=response_id(generation_id),
            created_at=created_at,
            model=model,
        )
        self._seq = 0
        self._done: dict[int, OutputItem] = {}
        self._next_index = 0
        self._reasoning: _OpenReasoning | None = None
        # Reasoning details that outlive the text deltas: encrypted blobs and signatures.
        self._details: list[dict[str, Any]] = []
        self._message: _OpenMessage | None = None
        self._calls: dict[int, _OpenCall] = {}  # by the chat tool call index
        self.finish_reason: str | None = None
        self.finished = False

    def _emit(self, out: list[ResponseEvent], event: ResponseEvent) -> None:
        event.sequence_number = self._seq
        self._seq += 1
        out.append(event)

    def _snapshot(self, status: ResponseStatus, **changes: Any) -> Response:
        output = [self._done[i] for i in sorted(self._done)]
        return msgspec.structs.replace(self._base, status=status, output=output, **changes)

    def start(self) -> list[ResponseEvent]:
        out: list[ResponseEvent] = []
        self._emit(out, ResponseCreated(response=self._snapshot("in_progress")))
        self._emit(out, ResponseInProgress(response=self._snapshot("in_progress")))
        return out

    def feed(self, chunk: ChatChunk) -> list[ResponseEvent]:
        """Events for one canonical chunk; the last chunk (usage or error) ends the stream."""
        out: list[ResponseEvent] = []
        if self.finished:
            return out
        if isinstance(chunk.error, StreamError):
            self._fail(out, chunk.error)
            return out
        for choice in chunk.choices:
            if choice.index != 0:
                continue  # a Response has one output; we never ask for n > 1
            delta = choice.delta
            if isinstance(delta.reasoning, str) and delta.reasoning:
                self._reasoning_delta(out, delta.reasoning)
            if delta.reasoning_details:
                self._details.extend(d for d in delta.reasoning_details if _kept(d))
            if isinstance(delta.content, str) and delta.content:
                self._part_delta(
                    out, "output_text", delta.content, choice_logprobs(choice.logprobs)
                )
            if isinstance(delta.refusal, str) and delta.refusal:
                self._part_delta(out, "refusal", delta.refusal, [])
            for call in delta.tool_calls or ():
                self._call_delta(out, call)
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
        if not chunk.choices and isinstance(chunk.usage, Usage):
            self._complete(out, chunk.usage, chunk.openrouter_metadata)
        return out

    # -- deltas

    def _new_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def _reasoning_delta(self, out: list[ResponseEvent], text: str) -> None:
        state = self._reasoning
        if state is None:
            self._close_message(out, "completed")
            self._close_calls(out, "completed")
            state = self._reasoning = _OpenReasoning(item_id("rs"), self._new_index())
            item = ReasoningItem(id=state.id, summary=[], status="in_progress")
            self._emit(out, OutputItemAdded(output_index=state.index, item=item))
            self._emit(
                out,
                ReasoningSummaryPartAdded(
                    item_id=state.id,
                    output_index=state.index,
                    summary_index=0,
                    part=SummaryTextPart(text=""),
                ),
            )
        state.text.append(text)
        self._emit(
            out,
            ReasoningSummaryTextDelta(
                item_id=state.id, output_index=state.index, summary_index=0, delta=text
            ),
        )

    def _open_part(
        self, out: list[ResponseEvent], kind: Literal["output_text", "refusal"]
    ) -> tuple[_OpenMessage, _OpenPart]:
        self._close_reasoning(out, "completed")
        self._close_calls(out, "completed")
        message = self._message
        if message is None:
            message = self._message = _OpenMessage(item_id("msg"), self._new_index())
            item = MessageItem(id=message.id, status="in_progress", content=[])
            self._emit(out, OutputItemAdded(output_index=message.index, item=item))
        part = message.parts.get(kind)
        if part is None:
            part = message.parts[kind] = _OpenPart(kind, len(message.parts))
            self._emit(
                out,
                ContentPartAdded(
                    item_id=message.id,
                    output_index=message.index,
                    content_index=part.index,
                    part=_part(part, with_logprobs=False),
                ),
            )
        return message, part

    def _part_delta(
        self,
        out: list[ResponseEvent],
        kind: Literal["output_text", "refusal"],
        text: str,
        logprobs: list[dict[str, Any]],
    ) -> None:
        message, part = self._open_part(out, kind)
        part.text.append(text)
        if kind == "refusal":
            self._emit(
                out,
                RefusalDelta(
                    item_id=message.id,
                    output_index=message.index,
                    content_index=part.index,
                    delta=text,
                ),
            )
            return
        part.logprobs.extend(logprobs)
        self._emit(
            out,
            OutputTextDelta(
                item_id=message.id,
                output_index=message.index,
                content_index=part.index,
                delta=text,
                logprobs=logprobs,
            ),
        )

    def _call_delta(self, out: list[ResponseEvent], delta: ToolCallDelta) -> None:
        fn = delta.function
        name = fn.name if fn is not UNSET and isinstance(fn.name, str) else ""
        arguments = fn.arguments if fn is not UNSET and isinstance(fn.arguments, str) else ""
        state = self._calls.get(delta.index)
        if state is None:
            self._close_reasoning(out, "completed")
            self._close_message(out, "completed")
            call_id = delta.id if isinstance(delta.id, str) else item_id("call")
            state = self._calls[delta.index] = _OpenCall(
                item_id("fc"), self._new_index(), call_id, name
            )
            item = self._call_item(state, "in_progress")
            item.arguments = ""
            self._emit(out, OutputItemAdded(output_index=state.index, item=item))
        elif name:
            state.name += name
        if arguments:
            state.arguments.append(arguments)
            self._emit(
                out,
                FunctionCallArgumentsDelta(
                    item_id=state.id, output_index=state.index, delta=arguments
                ),
            )

    # -- closing items

    def _close_reasoning(self, out: list[ResponseEvent], status: ItemStatus) -> None:
        state, self._reasoning = self._reasoning, None
        if state is None:
            self._lone_reasoning(out)
            return
        text = "".join(state.text)
        self._emit(
            out,
            ReasoningSummaryTextDone(
                item_id=state.id, output_index=state.index, summary_index=0, text=text
            ),
        )
        self._emit(
            out,
            ReasoningSummaryPartDone(
                item_id=state.id,
                output_index=state.index,
                summary_index=0,
                part=SummaryTextPart(text=text),
            ),
        )
        item = reasoning_item(text, self._details, status, state.id)
        assert item is not None  # a reasoning item opens on its first text
        self._details = []
        self._finish_item(out, state.index, item)

    def _lone_reasoning(self, out: list[ResponseEvent]) -> None:
        """Reasoning that came only as details (encrypted, no text) is still an item."""
        item = reasoning_item("", self._details, "completed")
        if item is None:
            return
        self._details = []
        index = self._new_index()
        added = ReasoningItem(id=item.id, summary=[], status="in_progress")
        self._emit(out, OutputItemAdded(output_index=index, item=added))
        self._finish_item(out, index, item)

    def _close_message(self, out: list[ResponseEvent], status: ItemStatus) -> None:
        message, self._message = self._message, None
        if message is None:
            return
        parts: list[OutputTextPart | RefusalPart] = []
        for part in message.parts.values():
            text = "".join(part.text)
            ids, index = message.id, message.index
            if part.kind == "refusal":
                self._emit(out, RefusalDone(ids, index, part.index, refusal=text))
            else:
                logprobs = part.logprobs if self._want_logprobs else []
                self._emit(out, OutputTextDone(ids, index, part.index, text, logprobs))
            done = _part(part, with_logprobs=self._want_logprobs)
            self._emit(out, ContentPartDone(ids, index, part.index, part=done))
            parts.append(done)
        self._finish_item(out, message.index, MessageItem(message.id, status, parts))

    def _close_calls(self, out: list[ResponseEvent], status: ItemStatus) -> None:
        calls, self._calls = self._calls, {}
        for state in sorted(calls.values(), key=lambda s: s.index):
            self._emit(
                out,
                FunctionCallArgumentsDone(
                    item_id=state.id,
                    output_index=state.index,
                    name=state.name,
                    arguments="".join(state.arguments),
                ),
            )
            self._finish_item(out, state.index, self._call_item(state, status))

    def _call_item(self, state: _OpenCall, status: ItemStatus) -> FunctionCallItem:
        return FunctionCallItem(
            id=state.id,
            call_id=state.call_id,
            name=state.name,
            arguments="".join(state.arguments),
            status=status,
        )

    def _finish_item(self, out: list[ResponseEvent], index: int, item: OutputItem) -> None:
        self._done[index] = item
        self._emit(out, OutputItemDone(output_index=index, item=item))

    def _close_all(self, out: list[ResponseEvent], last: ItemStatus) -> None:
        """Close what is open; the item that was still being written gets ``last``."""
        if self._reasoning is None:
            self._lone_reasoning(out)
        open_items: list[tuple[int, Callable[[ItemStatus], None]]] = []
        if self._reasoning is not None:
            open_items.append((self._reasoning.index, lambda s: self._close_reasoning(out, s)))
        if self._message is not None:
            open_items.append((self._message.index, lambda s: self._close_message(out, s)))
        if self._calls:
            first = min(c.index for c in self._calls.values())
            open_items.append((first, lambda s: self._close_calls(out, s)))
        open_items.sort(key=lambda pair: pair[0])
        for n, (_, close) in enumerate(open_items):
            close(last if n == len(open_items) - 1 else "completed")

    # -- the end

    def _complete(
        self, out: list[ResponseEvent], usage: Usage, metadata: dict[str, Any] | UnsetType
    ) -> None:
        status, incomplete = finish_status(self.finish_reason)
        if self._next_index == 0:
            # Nothing was generated: still answer with one (empty) message, as non-streamed.
            self._open_part(out, "output_text")
        self._close_all(out, "incomplete" if incomplete else "completed")
        response = self._snapshot(
            status,
            incomplete_details=incomplete,
            completed_at=int(time.time()),
            usage=response_usage(usage),
            openrouter_metadata=metadata,
        )
        event = ResponseIncomplete if incomplete else ResponseCompleted
        self._emit(out, event(response=response))
        self.finished = True

    def _fail(self, out: list[ResponseEvent], error: StreamError) -> None:
        self._close_all(out, "incomplete")
        code = "rate_limit_exceeded" if error.code == 429 else "server_error"
        response = self._snapshot("failed", error=ResponseError(code=code, message=error.message))
        self._emit(out, ResponseFailed(response=response))
        self.finished = True


def _kept(detail: dict[str, Any]) -> bool:
    # Summaries and plain text arrive as `reasoning` deltas too; these carry something more.
    kind = detail.get("type")
    return kind == "reasoning.encrypted" or (
        kind == "reasoning.text" and isinstance(detail.get("signature"), str)
    )


def _part(part: _OpenPart, *, with_logprobs: bool) -> OutputTextPart | RefusalPart:
    text = "".join(part.text)
    if part.kind == "refusal":
        return RefusalPart(refusal=text)
    out = OutputTextPart(text=text)
    if with_logprobs:
        out.logprobs = list(part.logprobs)
    return out


def event_type(event: ResponseEvent) -> str:
    return str(event.__struct_config__.tag)
