"""Responses API requests as chat requests.

Pure translation, no I/O: the handler in :mod:`switchyard.server.responses_api` decodes the
request, translates it here and calls the chat service with the chat request. Anything the
chat service says about a chat field (``messages[3].content``, ``max_tokens``) is renamed by
the :class:`Translation` to the field the client actually sent (``input[2].content``,
``max_output_tokens``). Input items become chat messages in
:mod:`switchyard.surfaces.responses_input`; the answer is rendered by
:mod:`switchyard.surfaces.responses` and :mod:`switchyard.surfaces.responses_stream`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from msgspec import UNSET, UnsetType

from switchyard.errors import InvalidRequest
from switchyard.surfaces.responses_input import STATELESS, MessageBuilder, required
from switchyard.wire.chat import (
    ChatRequest,
    FunctionDefinition,
    FunctionTool,
    JsonObjectFormat,
    JsonSchemaConfig,
    JsonSchemaFormat,
    NamedFunction,
    NamedToolChoice,
    ResponseFormat,
    SystemMessage,
    ToolChoice,
    UserMessage,
)
from switchyard.wire.responses import (
    FormatJsonObject,
    FormatJsonSchema,
    FormatText,
    Response,
    ResponsesRequest,
    ResponsesTool,
    TextConfig,
    ToolChoiceObject,
)

_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(slots=True)
class Translation:
    """A Responses request as a chat request, plus what the response must echo."""

    chat: ChatRequest
    template: Response  # the echoed parameters; id, model, status and output filled later
    want_logprobs: bool
    # For each chat message, where it came from: (item path, content path).
    origins: list[tuple[str, str]]

    def rename(self, exc: InvalidRequest) -> InvalidRequest:
        """The same error, naming the Responses field instead of the chat field."""
        old = exc.field
        if not old:
            return exc
        new = _renamed_field(old, self.origins)
        if new == old:
            return exc
        return InvalidRequest(
            exc.message.replace(old, new),
            field=new,
            metadata=dict(exc.metadata or {}),  # other facts (e.g. routing exclusions) stay
            headers=exc.headers or None,
        )


_CHAT_FIELDS = {
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
    "response_format": "text.format",
    "reasoning_effort": "reasoning.effort",
    "tool_choice.function.name": "tool_choice.name",
    "messages": "input",
}
_MESSAGE_PATH = re.compile(r"^messages\[(\d+)\](?:\.content(.*))?(.*)$")
_TOOL_PATH = re.compile(r"^tools\[(\d+)\]\.function(.*)$")


def _renamed_field(old: str, origins: list[tuple[str, str]]) -> str:
    if old in _CHAT_FIELDS:
        return _CHAT_FIELDS[old]
    if old.startswith("response_format."):
        return "text.format." + old.removeprefix("response_format.json_schema.")
    if match := _TOOL_PATH.match(old):
        return f"tools[{match[1]}]{match[2]}"
    if (match := _MESSAGE_PATH.match(old)) and int(match[1]) < len(origins):
        item, content = origins[int(match[1])]
        if match[2] is None:
            return item + match[3]
        # An image part's URL is `image_url.url` in chat and `image_url` in Responses.
        return content + match[2].replace(".image_url.url", ".image_url")
    return old


def to_chat(request: ResponsesRequest) -> Translation:
    """Translate a decoded Responses request; raises :class:`InvalidRequest` naming the
    Responses field at fault."""
    _refuse_stored_state(request)
    builder = MessageBuilder()
    if isinstance(request.instructions, str):
        builder.add(SystemMessage(content=request.instructions), "instructions", "instructions")
    if isinstance(request.input, str):
        builder.add(UserMessage(content=request.input), "input", "input")
    else:
        if not request.input:
            raise InvalidRequest("`input` must not be empty", field="input")
        for i, item in enumerate(request.input):
            builder.item(item, f"input[{i}]")
    messages = builder.finish()
    if not messages:
        raise InvalidRequest("`input` holds no message to answer", field="input")

    tools = _tools(request.tools)
    tool_choice, tools = _tool_choice(request.tool_choice, tools)
    text = request.text if isinstance(request.text, TextConfig) else TextConfig()
    want_logprobs = isinstance(request.top_logprobs, int)
    chat = ChatRequest(
        messages=messages,
        model=request.model,
        models=request.models,
        stream=request.stream,
        max_tokens=request.max_output_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        top_k=request.top_k,
        frequency_penalty=request.frequency_penalty,
        presence_penalty=request.presence_penalty,
        logprobs=True if want_logprobs else UNSET,
        top_logprobs=request.top_logprobs if want_logprobs else UNSET,
        tools=tools if tools else UNSET,
        tool_choice=tool_choice,
        parallel_tool_calls=request.parallel_tool_calls,
        response_format=_response_format(text),
        verbosity=_verbosity(text),
        reasoning=request.reasoning if request.reasoning is not None else UNSET,
        metadata=request.metadata if request.metadata is not None else UNSET,
        user=request.user,
        session_id=request.session_id,
        service_tier=request.service_tier,
        prompt_cache_key=request.prompt_cache_key,
        modalities=[*request.modalities] if request.modalities is not UNSET else UNSET,
        provider=request.provider,
        plugins=request.plugins,
        route=request.route,
        debug=request.debug,
        trace=request.trace,
        cache_control=request.cache_control,
        image_config=request.image_config,
        prompt_cache_options=request.prompt_cache_options,
    )
    return Translation(chat, _template(request, text), want_logprobs, builder.origins)


def _refuse_stored_state(request: ResponsesRequest) -> None:
    for name in ("previous_response_id", "conversation", "prompt"):
        if getattr(request, name) not in (None, UNSET):
            raise InvalidRequest(
                f"`{name}` is not supported: {STATELESS}. Send the whole conversation in"
                " `input` instead.",
                field=name,
            )
    if request.background is True:
        raise InvalidRequest(
            f"`background` is not supported: {STATELESS}, so a background response could"
            " never be retrieved",
            field="background",
        )


def _option(value: Any) -> Any:
    return None if value is UNSET else value


def _template(request: ResponsesRequest, text: TextConfig) -> Response:
    return Response(
        id="",
        created_at=0,
        model="",
        status="in_progress",
        output=[],
        instructions=_option(request.instructions),
        max_output_tokens=_option(request.max_output_tokens),
        metadata=_option(request.metadata),
        temperature=_option(request.temperature),
        top_p=_option(request.top_p),
        # OpenAI echoes 0 when none were asked for; OpenRouter's schema has no null here.
        top_logprobs=request.top_logprobs if isinstance(request.top_logprobs, int) else 0,
        presence_penalty=_option(request.presence_penalty),
        frequency_penalty=_option(request.frequency_penalty),
        tools=[_echoed(tool) for tool in request.tools or ()],
        tool_choice=request.tool_choice if request.tool_choice not in (None, UNSET) else "auto",
        parallel_tool_calls=request.parallel_tool_calls is not False,
        text=TextConfig(
            format=text.format if text.format is not UNSET else FormatText(),
            verbosity=text.verbosity,
        ),
        reasoning=_option(request.reasoning),
        truncation=request.truncation if isinstance(request.truncation, str) else "disabled",
        service_tier=_option(request.service_tier),
        user=_option(request.user),
        safety_identifier=_option(request.safety_identifier),
        prompt_cache_key=_option(request.prompt_cache_key),
    )


def _echoed(tool: ResponsesTool) -> ResponsesTool:
    """A function tool as the response lists it: the spec requires its every field."""
    return ResponsesTool(
        type=tool.type,
        name=tool.name,
        description=tool.description if isinstance(tool.description, str) else None,
        parameters=tool.parameters if isinstance(tool.parameters, dict) else None,
        strict=tool.strict if isinstance(tool.strict, bool) else None,
    )


# --- request: tools and formats -----------------------------------------------------------


def _tools(tools: list[ResponsesTool] | None | UnsetType) -> list[FunctionTool]:
    out: list[FunctionTool] = []
    for i, tool in enumerate(tools or ()):
        if tool.type != "function":
            raise InvalidRequest(
                f"`tools[{i}].type` is {tool.type!r}; only function tools are supported",
                field=f"tools[{i}].type",
            )
        name = required(tool.name, f"tools[{i}].name")
        if not _FUNCTION_NAME.match(name):
            raise InvalidRequest(
                f"`tools[{i}].name` must be 1-64 letters, digits, underscores or dashes",
                field=f"tools[{i}].name",
            )
        out.append(
            FunctionTool(
                type="function",
                function=FunctionDefinition(
                    name=name,
                    description=tool.description if isinstance(tool.description, str) else UNSET,
                    parameters=tool.parameters if isinstance(tool.parameters, dict) else UNSET,
                    strict=tool.strict,
                ),
            )
        )
    return out


def _tool_choice(
    choice: str | ToolChoiceObject | None | UnsetType, tools: list[FunctionTool]
) -> tuple[ToolChoice | UnsetType, list[FunctionTool]]:
    if choice is None or choice is UNSET:
        return UNSET, tools
    if isinstance(choice, str):
        return choice, tools  # type: ignore[return-value]
    names = {tool.function.name for tool in tools}
    if choice.type == "function":
        name = required(choice.name, "tool_choice.name")
        if name not in names:
            raise InvalidRequest(
                f"`tool_choice` names function {name!r}, which is not in `tools`",
                field="tool_choice.name",
            )
        return NamedToolChoice(type="function", function=NamedFunction(name=name)), tools
    if choice.type == "allowed_tools":
        allowed: set[str] = set()
        for i, entry in enumerate(required(choice.tools, "tool_choice.tools")):
            allowed_name = entry.get("name")
            if entry.get("type") != "function" or allowed_name not in names:
                raise InvalidRequest(
                    f"`tool_choice.tools[{i}]` must name a function in `tools`",
                    field=f"tool_choice.tools[{i}]",
                )
            allowed.add(str(allowed_name))
        if isinstance(choice.mode, UnsetType):
            raise InvalidRequest(
                "Missing required field `tool_choice.mode`", field="tool_choice.mode"
            )
        return choice.mode, [tool for tool in tools if tool.function.name in allowed]
    raise InvalidRequest(
        f"`tool_choice.type` is {choice.type!r}; only function tools are supported",
        field="tool_choice.type",
    )


def _response_format(text: TextConfig) -> ResponseFormat | UnsetType:
    fmt = text.format
    if isinstance(fmt, FormatJsonSchema):
        return JsonSchemaFormat(
            json_schema=JsonSchemaConfig(
                name=fmt.name, description=fmt.description, schema=fmt.schema, strict=fmt.strict
            )
        )
    if isinstance(fmt, FormatJsonObject):
        return JsonObjectFormat()
    return UNSET  # plain text is what every model does unasked


def _verbosity(text: TextConfig) -> Literal["low", "medium", "high"] | None | UnsetType:
    value = text.verbosity
    if value in ("xhigh", "max"):
        return "high"  # chat completions stop at high
    return value  # type: ignore[return-value]
