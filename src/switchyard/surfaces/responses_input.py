"""Responses input items as chat messages.

Assistant-side items in a row (reasoning, an assistant message, function calls) make one chat
assistant turn. Each chat message remembers the input path it came from, so that the request
side can rename a chat service error to the Responses field; errors raised here name that
field already (``input[2].content[0].image_url``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from switchyard.errors import InvalidRequest
from switchyard.wire.chat import (
    AssistantMessage,
    AudioPart,
    ContentPart,
    DeveloperMessage,
    FilePart,
    FunctionCall,
    ImagePart,
    ImageUrl,
    Message,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from switchyard.wire.responses import (
    InputAudioPart,
    InputContent,
    InputFilePart,
    InputImagePart,
    InputItem,
    InputTextPart,
    OutputTextPart,
    ReasoningTextPart,
    RefusalPart,
)

_T = TypeVar("_T")
STATELESS = "Switchyard's Responses API is stateless and stores nothing"


@dataclass(slots=True)
class _Pending:
    """Assistant-side items (reasoning, text, function calls) that make one chat turn."""

    path: str
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)


class MessageBuilder:
    """The chat messages for a request's input, and where each came from."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.origins: list[tuple[str, str]] = []
        self._pending: _Pending | None = None

    def add(self, message: Message, path: str, content_path: str) -> None:
        self._flush()
        self.messages.append(message)
        self.origins.append((path, content_path))

    def finish(self) -> list[Message]:
        self._flush()
        return self.messages

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        self.messages.append(
            AssistantMessage(
                content=pending.content,
                refusal=pending.refusal if pending.refusal is not None else UNSET,
                tool_calls=pending.tool_calls or UNSET,
                reasoning="".join(pending.reasoning) if pending.reasoning else UNSET,
                reasoning_details=pending.details or UNSET,
            )
        )
        self.origins.append((pending.path, f"{pending.path}.content"))

    def _assistant(self, path: str, *, fresh: bool) -> _Pending:
        """The assistant turn being built; ``fresh`` starts a new one if this already spoke."""
        pending = self._pending
        if pending is not None and fresh and (pending.content is not None or pending.tool_calls):
            self._flush()
            pending = None
        if pending is None:
            pending = self._pending = _Pending(path)
        return pending

    def item(self, item: InputItem, path: str) -> None:
        kind = item.type
        if kind == "message":
            self._message(item, path)
        elif kind == "function_call":
            pending = self._assistant(path, fresh=False)
            pending.tool_calls.append(
                ToolCall(
                    id=required(item.call_id, f"{path}.call_id"),
                    function=FunctionCall(
                        name=required(item.name, f"{path}.name"),
                        arguments=required(item.arguments, f"{path}.arguments"),
                    ),
                )
            )
        elif kind == "function_call_output":
            call_id = required(item.call_id, f"{path}.call_id")
            output = item.output
            if isinstance(output, UnsetType):
                raise InvalidRequest(
                    f"Missing required field `{path}.output`", field=f"{path}.output"
                )
            content = output if isinstance(output, str) else _user_parts(output, f"{path}.output")
            self.add(ToolMessage(content=content, tool_call_id=call_id), path, f"{path}.output")
        elif kind == "reasoning":
            self._reasoning(item, path)
        else:  # item_reference
            raise InvalidRequest(
                f"`{path}` is an item_reference, which needs stored items: {STATELESS}",
                field=f"{path}.type",
            )

    def _message(self, item: InputItem, path: str) -> None:
        role = required(item.role, f"{path}.role")
        content = item.content
        if content is UNSET or content is None:
            raise InvalidRequest(
                f"Missing required field `{path}.content`", field=f"{path}.content"
            )
        where = f"{path}.content"
        if role == "assistant":
            pending = self._assistant(path, fresh=True)
            if isinstance(content, str):
                pending.content = content
            else:
                pending.content, pending.refusal = _assistant_parts(content, where)
            return
        if role == "user":
            parts = content if isinstance(content, str) else _user_parts(content, where)
            self.add(UserMessage(content=parts), path, where)
            return
        text = content if isinstance(content, str) else _text_parts(content, where)
        if role == "system":
            self.add(SystemMessage(content=text), path, where)
        else:
            self.add(DeveloperMessage(content=text), path, where)

    def _reasoning(self, item: InputItem, path: str) -> None:
        pending = self._assistant(path, fresh=True)
        ident = item.id if isinstance(item.id, str) else None
        fmt = item.format if isinstance(item.format, str) else None
        summaries = [part.text for part in item.summary or ()]
        texts: list[str] = []
        if isinstance(item.content, list):
            for j, part in enumerate(item.content):
                if not isinstance(part, ReasoningTextPart):
                    raise _bad_part(part, f"{path}.content[{j}]", "a reasoning item")
                texts.append(part.text)
        signature = item.signature if isinstance(item.signature, str) else None
        if signature is not None and not texts:
            # Our own output carries signed reasoning text as its summary.
            texts, summaries = summaries, []
        for summary in summaries:
            pending.details.append(_detail("reasoning.summary", ident, fmt, summary=summary))
        for n, text in enumerate(texts):
            signed = {"signature": signature} if signature and n == len(texts) - 1 else {}
            pending.details.append(_detail("reasoning.text", ident, fmt, text=text, **signed))
        if isinstance(item.encrypted_content, str):
            pending.details.append(
                _detail("reasoning.encrypted", ident, fmt, data=item.encrypted_content)
            )
        pending.reasoning.extend(texts or summaries)


def _detail(kind: str, ident: str | None, fmt: str | None, **values: str) -> dict[str, Any]:
    detail: dict[str, Any] = {"type": kind, **values}
    if ident is not None:
        detail["id"] = ident
    if fmt is not None:
        detail["format"] = fmt
    return detail


def required(value: _T | UnsetType, where: str) -> _T:
    if isinstance(value, UnsetType):
        raise InvalidRequest(f"Missing required field `{where}`", field=where)
    return value


def _bad_part(part: InputContent, where: str, context: str) -> InvalidRequest:
    kind = part.__struct_config__.tag
    return InvalidRequest(f"`{where}` is {kind} content, which {context} cannot hold", field=where)


def _user_parts(parts: list[InputContent], where: str) -> list[ContentPart]:
    out: list[ContentPart] = []
    for j, part in enumerate(parts):
        at = f"{where}[{j}]"
        if isinstance(part, InputTextPart | OutputTextPart):
            out.append(TextPart(text=part.text))
        elif isinstance(part, InputImagePart):
            out.append(_image(part, at))
        elif isinstance(part, InputFilePart):
            out.append(_file(part, at))
        elif isinstance(part, InputAudioPart):
            out.append(AudioPart(input_audio=msgspec.to_builtins(part.input_audio)))
        else:
            raise _bad_part(part, at, "a user message or function output")
    return out


def _image(part: InputImagePart, where: str) -> ImagePart:
    if not isinstance(part.image_url, str):
        if isinstance(part.file_id, str):
            raise InvalidRequest(
                f"`{where}.file_id` refers to an uploaded file: {STATELESS}; send the image"
                " as `image_url` (an http(s) or data: URL)",
                field=f"{where}.file_id",
            )
        raise InvalidRequest(
            f"Missing required field `{where}.image_url`", field=f"{where}.image_url"
        )
    return ImagePart(image_url=ImageUrl(url=part.image_url, detail=part.detail))


def _file(part: InputFilePart, where: str) -> FilePart:
    data = part.file_data if isinstance(part.file_data, str) else part.file_url
    if not isinstance(data, str):
        if isinstance(part.file_id, str):
            raise InvalidRequest(
                f"`{where}.file_id` refers to an uploaded file: {STATELESS}; send"
                " `file_data` or `file_url`",
                field=f"{where}.file_id",
            )
        raise InvalidRequest(
            f"`{where}` needs `file_data` or `file_url`", field=f"{where}.file_data"
        )
    name = part.filename if isinstance(part.filename, str) else "file"
    return FilePart(file={"filename": name, "file_data": data})


def _text_parts(parts: list[InputContent], where: str) -> list[TextPart]:
    out: list[TextPart] = []
    for j, part in enumerate(parts):
        if not isinstance(part, InputTextPart | OutputTextPart):
            raise _bad_part(part, f"{where}[{j}]", "a system or developer message")
        out.append(TextPart(text=part.text))
    return out


def _assistant_parts(parts: list[InputContent], where: str) -> tuple[str, str | None]:
    texts: list[str] = []
    refusals: list[str] = []
    for j, part in enumerate(parts):
        if isinstance(part, OutputTextPart | InputTextPart):
            texts.append(part.text)
        elif isinstance(part, RefusalPart):
            refusals.append(part.refusal)
        else:
            raise _bad_part(part, f"{where}[{j}]", "an assistant message")
    return "".join(texts), "".join(refusals) if refusals else None
