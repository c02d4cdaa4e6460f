"""The Anthropic Messages surface: requests to canonical chat, results and streams back.

Pure functions and one small state machine; the HTTP side lives in
:mod:`switchyard.server.messages`. Errors name the field as the client sent it (Anthropic
paths such as ``messages[1].content[0].source.url``), not as the chat request spells it.

Chat Completions has no place for some Anthropic facts, so they are carried as follows:
thinking blocks travel as ``reasoning_details`` (``reasoning.text`` with its signature,
``reasoning.encrypted`` for redacted thinking); a tool result's ``is_error`` is said in the
tool message's text; which stop sequence matched is only known when the upstream says so.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, NoReturn, cast

import msgspec
from msgspec import UNSET, UnsetType

from switchyard.errors import InvalidRequest, SwitchyardError
from switchyard.wire import messages as am
from switchyard.wire.chat import (
    AssistantMessage,
    ChatChunk,
    ChatRequest,
    ChatResult,
    ContentPart,
    FilePart,
    FunctionCall,
    FunctionDefinition,
    FunctionTool,
    ImagePart,
    ImageUrl,
    JsonSchemaConfig,
    JsonSchemaFormat,
    Message,
    NamedFunction,
    NamedToolChoice,
    Reasoning,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolMessage,
    Usage,
    UserMessage,
)
from switchyard.wire.chat import CostDetails as ChatCostDetails
from switchyard.wire.codec import encode

# Thinking blocks keep Anthropic's signature format when they travel as reasoning_details.
REASONING_FORMAT = "anthropic-claude-v1"
IMAGE_URL_SCHEMES = ("http://", "https://")
# Anthropic's service tiers, in the Chat Completions vocabulary.
SERVICE_TIERS = {"auto": "auto", "standard_only": "default"}
CHAT_SERVICE_TIERS = frozenset({"auto", "default", "fast", "flex", "priority", "scale"})
TOOL_ERROR_PREFIX = "Error: "
_ASSISTANT_ONLY = "tool_use, thinking and redacted_thinking"

_json_decoder = msgspec.json.Decoder()

# --- request --------------------------------------------------------------------------------


def to_chat_request(req: am.MessagesRequest) -> ChatRequest:
    """The canonical chat request for a Messages request; :class:`InvalidRequest` if bad."""
    messages: list[Message] = []
    if not isinstance(req.system, UnsetType):
        messages.append(SystemMessage(content=_system_content(req.system)))
    for i, message in enumerate(req.messages):
        messages.extend(_chat_messages(message, f"messages[{i}]"))
    tools, tool_choice, parallel = _tools(req)
    return ChatRequest(
        messages=messages,
        model=req.model,
        models=_models(req),
        stream=req.stream,
        max_tokens=req.max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        stop=req.stop_sequences if req.stop_sequences else UNSET,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        reasoning=_reasoning(req),
        response_format=_response_format(req),
        user=_user(req),
        session_id=req.session_id,
        provider=req.provider,
        service_tier=_service_tier(req),
        plugins=req.plugins,
        route=req.route,
        trace=req.trace,
        cache_control=_cache(req.cache_control),
    )


def _cache(value: am.CacheControl | None | UnsetType) -> am.CacheControl | UnsetType:
    return value if isinstance(value, dict) else UNSET


def _text_part(block: am.TextBlockParam) -> TextPart:
    return TextPart(text=block.text, cache_control=_cache(block.cache_control))


def _system_content(system: str | list[am.TextBlockParam]) -> str | list[TextPart]:
    if isinstance(system, str):
        return system
    if not system:
        raise InvalidRequest("`system` must not be an empty list", field="system")
    return [_text_part(block) for block in system]


def _compact(parts: list[ContentPart]) -> str | list[ContentPart]:
    """One plain text part travels as a string, which every upstream accepts."""
    if len(parts) == 1:
        only = parts[0]
        if isinstance(only, TextPart) and only.cache_control is UNSET:
            return only.text
    return parts


def _chat_messages(message: am.MessageParam, where: str) -> list[Message]:
    content = message.content
    if isinstance(content, str):
        if message.role == "assistant":
            return [AssistantMessage(content=content)]
        if message.role == "system":
            return [SystemMessage(content=content)]
        return [UserMessage(content=content)]
    if not content:
        raise InvalidRequest(
            f"`{where}.content` must not be an empty list", field=f"{where}.content"
        )
    if message.role == "assistant":
        return [_assistant_message(content, where)]
    if message.role == "system":
        texts = []
        for j, block in enumerate(content):
            if not isinstance(block, am.TextBlockParam):
                _misplaced(block, f"{where}.content[{j}]", "system messages take text blocks")
            texts.append(_text_part(block))
        return [SystemMessage(content=texts)]
    return _user_messages(content, where)


def _misplaced(block: am.ContentBlockParam, where: str, rule: str) -> NoReturn:
    kind = block.__struct_config__.tag
    raise InvalidRequest(
        f"`{where}.type` is {kind!r}, which is not allowed here: {rule}", field=f"{where}.type"
    )


def _user_messages(blocks: list[am.ContentBlockParam], where: str) -> list[Message]:
    # Tool results answer the previous assistant turn, so they go first, as tool messages.
    tool_messages: list[Message] = []
    parts: list[ContentPart] = []
    for j, block in enumerate(blocks):
        here = f"{where}.content[{j}]"
        if isinstance(block, am.ToolResultBlockParam):
            tool_messages.append(_tool_message(block, here))
        elif isinstance(block, am.TextBlockParam | am.ImageBlockParam | am.DocumentBlockParam):
            parts.append(_user_part(block, here))
        else:
            _misplaced(block, here, f"{_ASSISTANT_ONLY} blocks belong in assistant messages")
    if parts:
        tool_messages.append(UserMessage(content=_compact(parts)))
    return tool_messages


def _user_part(
    block: am.TextBlockParam | am.ImageBlockParam | am.DocumentBlockParam, where: str
) -> ContentPart:
    if isinstance(block, am.TextBlockParam):
        return _text_part(block)
    if isinstance(block, am.ImageBlockParam):
        return _image_part(block, where)
    source = block.source
    if isinstance(source, am.PlainTextSource):
        return TextPart(text=source.data, cache_control=_cache(block.cache_control))
    title = block.title if isinstance(block.title, str) and block.title else "document.pdf"
    if isinstance(source, am.Base64PdfSource):
        data = f"data:{source.media_type};base64,{source.data}"
    else:
        if not source.url.lower().startswith(IMAGE_URL_SCHEMES):
            raise InvalidRequest(
                f"`{where}.source.url` must be an http(s) URL", field=f"{where}.source.url"
            )
        data = source.url
    return FilePart(file={"filename": title, "file_data": data})


def _image_part(block: am.ImageBlockParam, where: str) -> ImagePart:
    source = block.source
    if isinstance(source, am.Base64ImageSource):
        if not source.data:
            raise InvalidRequest(
                f"`{where}.source.data` must not be empty", field=f"{where}.source.data"
            )
        return ImagePart(image_url=ImageUrl(url=f"data:{source.media_type};base64,{source.data}"))
    if not source.url.lower().startswith(IMAGE_URL_SCHEMES):
        raise InvalidRequest(
            f"`{where}.source.url` must be an http(s) URL", field=f"{where}.source.url"
        )
    return ImagePart(image_url=ImageUrl(url=source.url))


def _tool_message(block: am.ToolResultBlockParam, where: str) -> ToolMessage:
    content = block.content
    is_error = block.is_error is True
    if isinstance(content, UnsetType | str):
        text = content if isinstance(content, str) else ""
        return ToolMessage(
            tool_call_id=block.tool_use_id, content=TOOL_ERROR_PREFIX + text if is_error else text
        )
    parts: list[ContentPart] = []
    if is_error:
        parts.append(TextPart(text=TOOL_ERROR_PREFIX.strip()))
    for k, inner in enumerate(content):
        parts.append(_user_part(inner, f"{where}.content[{k}]"))
    if not parts:
        return ToolMessage(tool_call_id=block.tool_use_id, content="")
    return ToolMessage(tool_call_id=block.tool_use_id, content=_compact(parts))


def _assistant_message(blocks: list[am.ContentBlockParam], where: str) -> AssistantMessage:
    parts: list[ContentPart] = []
    calls: list[ToolCall] = []
    details: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        if isinstance(block, am.TextBlockParam):
            parts.append(_text_part(block))
        elif isinstance(block, am.ToolUseBlockParam):
            arguments = encode(block.input if block.input is not None else {}).decode()
            calls.append(ToolCall(id=block.id, function=FunctionCall(block.name, arguments)))
        elif isinstance(block, am.ThinkingBlockParam):
            details.append(
                {
                    "type": "reasoning.text",
                    "text": block.thinking,
                    "signature": block.signature,
                    "format": REASONING_FORMAT,
                    "index": len(details),
                }
            )
        elif isinstance(block, am.RedactedThinkingBlockParam):
            details.append(
                {
                    "type": "reasoning.encrypted",
                    "data": block.data,
                    "format": REASONING_FORMAT,
                    "index": len(details),
                }
            )
        else:
            _misplaced(
                block,
                f"{where}.content[{j}]",
                f"assistant messages take text and {_ASSISTANT_ONLY} blocks",
            )
    return AssistantMessage(
        content=_compact(parts) if parts else None,
        tool_calls=calls or UNSET,
        reasoning_details=details or UNSET,
    )


def _tools(
    req: am.MessagesRequest,
) -> tuple[list[FunctionTool] | UnsetType, ToolChoice | UnsetType, bool | UnsetType]:
    tools = req.tools if isinstance(req.tools, list) else []
    converted = [
        FunctionTool(
            type="function",
            function=FunctionDefinition(
                name=tool.name, description=tool.description, parameters=tool.input_schema
            ),
            cache_control=_cache(tool.cache_control),
        )
        for tool in tools
    ]
    choice = req.tool_choice
    if isinstance(choice, UnsetType):
        return converted or UNSET, UNSET, UNSET
    parallel: bool | UnsetType = UNSET
    if not isinstance(choice, am.ToolChoiceNone) and choice.disable_parallel_tool_use is True:
        parallel = False
    mapped: ToolChoice | UnsetType
    if isinstance(choice, am.ToolChoiceNone):
        mapped = "none"
    elif isinstance(choice, am.ToolChoiceAuto):
        mapped = "auto" if tools else UNSET  # "auto" with nothing to choose from is a no-op
        parallel = parallel if tools else UNSET
    elif not tools:
        raise InvalidRequest(
            f"`tool_choice` of type {choice.__struct_config__.tag!r} requires `tools`",
            field="tool_choice",
        )
    elif isinstance(choice, am.ToolChoiceAny):
        mapped = "required"
    else:
        if choice.name not in {tool.name for tool in tools}:
            raise InvalidRequest(
                f"`tool_choice.name` is {choice.name!r}, which is not in `tools`",
                field="tool_choice.name",
            )
        mapped = NamedToolChoice(type="function", function=NamedFunction(name=choice.name))
    return converted or UNSET, mapped, parallel


def _reasoning(req: am.MessagesRequest) -> Reasoning | UnsetType:
    thinking = req.thinking
    effort = req.output_config.effort if isinstance(req.output_config, am.OutputConfig) else UNSET
    if isinstance(thinking, UnsetType):
        return Reasoning(effort=effort) if isinstance(effort, str) else UNSET
    if isinstance(thinking, am.ThinkingDisabled):
        return Reasoning(enabled=False)
    # "omitted" asks for signatures without the thinking text: the reasoning is not returned.
    exclude = True if thinking.display == "omitted" else UNSET
    if isinstance(thinking, am.ThinkingEnabled):
        return Reasoning(max_tokens=thinking.budget_tokens, exclude=exclude)
    return Reasoning(enabled=True, effort=effort, exclude=exclude)


def _response_format(req: am.MessagesRequest) -> JsonSchemaFormat | UnsetType:
    config = req.output_config
    if isinstance(config, am.OutputConfig) and isinstance(config.format, am.OutputFormat):
        return JsonSchemaFormat(
            json_schema=JsonSchemaConfig(name="output", schema=config.format.schema)
        )
    return UNSET


def _models(req: am.MessagesRequest) -> list[str] | UnsetType:
    fallbacks = req.fallbacks
    if not fallbacks:
        return req.models
    if not isinstance(req.models, UnsetType):
        raise InvalidRequest("`fallbacks` cannot be combined with `models`", field="fallbacks")
    return [fallback.model for fallback in fallbacks]


def _user(req: am.MessagesRequest) -> str | UnsetType:
    if isinstance(req.user, str):
        return req.user
    metadata = req.metadata
    if isinstance(metadata, am.RequestMetadata) and isinstance(metadata.user_id, str):
        return metadata.user_id
    return UNSET


def _service_tier(req: am.MessagesRequest) -> Any:
    tier = req.service_tier
    if isinstance(tier, UnsetType):
        return UNSET
    if tier in SERVICE_TIERS:
        return SERVICE_TIERS[tier]
    if tier in CHAT_SERVICE_TIERS:
        return tier
    raise InvalidRequest(
        f"`service_tier` must be one of {', '.join(sorted({*SERVICE_TIERS, *CHAT_SERVICE_TIERS}))}",
        field="service_tier",
    )


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


# --- stream ---------------------------------------------------------------------------------


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
