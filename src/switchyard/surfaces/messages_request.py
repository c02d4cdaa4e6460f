"""Anthropic Messages requests as canonical chat requests.

Pure functions; the HTTP side lives in :mod:`switchyard.server.messages`, and the answer goes
back through :mod:`switchyard.surfaces.messages` and :mod:`switchyard.surfaces.messages_stream`.
Errors name the field as the client sent it (Anthropic paths such as
``messages[1].content[0].source.url``), not as the chat request spells it.

Chat Completions has no place for some Anthropic facts, so they are carried as follows:
thinking blocks travel as ``reasoning_details`` (``reasoning.text`` with its signature,
``reasoning.encrypted`` for redacted thinking); a tool result's ``is_error`` is said in the
tool message's text.
"""

from __future__ import annotations

from typing import Any, NoReturn

from msgspec import UNSET, UnsetType

from switchyard.errors import InvalidRequest
from switchyard.wire import messages as am
from switchyard.wire.chat import (
    REASONING_FORMAT_ANTHROPIC,
    AssistantMessage,
    ChatRequest,
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
    ToolChoice,
    ToolMessage,
    UserMessage,
)
from switchyard.wire.codec import encode

# Thinking blocks keep Anthropic's signature format when they travel as reasoning_details.
REASONING_FORMAT = REASONING_FORMAT_ANTHROPIC
IMAGE_URL_SCHEMES = ("http://", "https://")
# Anthropic's service tiers, in the Chat Completions vocabulary.
SERVICE_TIERS = {"auto": "auto", "standard_only": "default"}
CHAT_SERVICE_TIERS = frozenset({"auto", "default", "fast", "flex", "priority", "scale"})
TOOL_ERROR_PREFIX = "Error: "
_ASSISTANT_ONLY = "tool_use, thinking and redacted_thinking"


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
