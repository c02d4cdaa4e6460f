"""The Responses API surface: a Responses request becomes a chat request, and a chat result
or canonical chunk stream becomes a Responses object or event stream.

Pure translation, no I/O: the handler in :mod:`switchyard.server.responses_api` decodes,
calls the chat service and writes what this module returns. Anything the chat service says
about a chat field (``messages[3].content``, ``max_tokens``) is renamed here to the field the
client actually sent (``input[2].content``, ``max_output_tokens``).
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from switchyard.errors import InvalidRequest
from switchyard.wire.chat import (
    AssistantMessage,
    AudioPart,
    ChatRequest,
    ChatResult,
    ContentPart,
    DeveloperMessage,
    FilePart,
    FunctionCall,
    FunctionDefinition,
    FunctionTool,
    ImagePart,
    ImageUrl,
    JsonObjectFormat,
    JsonSchemaConfig,
    JsonSchemaFormat,
    Message,
    NamedFunction,
    NamedToolChoice,
    ResponseFormat,
    ResponseMessage,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolMessage,
    Usage,
    UserMessage,
)
from switchyard.wire.responses import (
    FormatJsonObject,
    FormatJsonSchema,
    FormatText,
    FunctionCallItem,
    IncompleteDetails,
    InputAudioPart,
    InputContent,
    InputFilePart,
    InputImagePart,
    InputItem,
    InputTextPart,
    InputTokensDetails,
    ItemStatus,
    MessageItem,
    OutputItem,
    OutputTextPart,
    OutputTokensDetails,
    ReasoningItem,
    ReasoningTextPart,
    RefusalPart,
    Response,
    ResponseCostDetails,
    ResponsesRequest,
    ResponseStatus,
    ResponsesTool,
    ResponseUsage,
    SummaryTextPart,
    TextConfig,
    ToolChoiceObject,
)

_T = TypeVar("_T")
_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_STATELESS = "Switchyard's Responses API is stateless and stores nothing"


def response_id(generation_id: str) -> str:
    """The response id for a generation: ``gen-X`` is answered as ``resp_X``."""
    return "resp_" + generation_id.removeprefix("gen-")


def item_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


# --- request ------------------------------------------------------------------------------


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
    builder = _Messages()
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
                f"`{name}` is not supported: {_STATELESS}. Send the whole conversation in"
                " `input` instead.",
                field=name,
            )
    if request.background is True:
        raise InvalidRequest(
            f"`background` is not supported: {_STATELESS}, so a background response could"
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


# --- request: input items -----------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    """Assistant-side items (reasoning, text, function calls) that make one chat turn."""

    path: str
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)


class _Messages:
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
                    id=_required(item.call_id, f"{path}.call_id"),
                    function=FunctionCall(
                        name=_required(item.name, f"{path}.name"),
                        arguments=_required(item.arguments, f"{path}.arguments"),
                    ),
                )
            )
        elif kind == "function_call_output":
            call_id = _required(item.call_id, f"{path}.call_id")
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
                f"`{path}` is an item_reference, which needs stored items: {_STATELESS}",
                field=f"{path}.type",
            )

    def _message(self, item: InputItem, path: str) -> None:
        role = _required(item.role, f"{path}.role")
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


def _required(value: _T | UnsetType, where: str) -> _T:
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
                f"`{where}.file_id` refers to an uploaded file: {_STATELESS}; send the image"
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
                f"`{where}.file_id` refers to an uploaded file: {_STATELESS}; send"
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


# --- request: tools and formats -----------------------------------------------------------


def _tools(tools: list[ResponsesTool] | None | UnsetType) -> list[FunctionTool]:
    out: list[FunctionTool] = []
    for i, tool in enumerate(tools or ()):
        if tool.type != "function":
            raise InvalidRequest(
                f"`tools[{i}].type` is {tool.type!r}; only function tools are supported",
                field=f"tools[{i}].type",
            )
        name = _required(tool.name, f"tools[{i}].name")
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
        name = _required(choice.name, "tool_choice.name")
        if name not in names:
            raise InvalidRequest(
                f"`tool_choice` names function {name!r}, which is not in `tools`",
                field="tool_choice.name",
            )
        return NamedToolChoice(type="function", function=NamedFunction(name=name)), tools
    if choice.type == "allowed_tools":
        allowed: set[str] = set()
        for i, entry in enumerate(_required(choice.tools, "tool_choice.tools")):
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


# --- response -----------------------------------------------------------------------------


def response_usage(usage: Usage) -> ResponseUsage:
    prompt = usage.prompt_tokens_details
    completion = usage.completion_tokens_details
    cached = prompt.cached_tokens if prompt else 0
    written = prompt.cache_write_tokens if prompt else UNSET
    out = ResponseUsage(
        input_tokens=usage.prompt_tokens,
        input_tokens_details=InputTokensDetails(
            cached_tokens=cached, cache_write_tokens=written if isinstance(written, int) else 0
        ),
        output_tokens=usage.completion_tokens,
        output_tokens_details=OutputTokensDetails(
            reasoning_tokens=completion.reasoning_tokens if completion else 0
        ),
        total_tokens=usage.total_tokens,
        cost=usage.cost,
        is_byok=usage.is_byok,
    )
    if usage.cost_details:
        out.cost_details = ResponseCostDetails(
            upstream_inference_input_cost=usage.cost_details.upstream_inference_prompt_cost,
            upstream_inference_output_cost=usage.cost_details.upstream_inference_completions_cost,
            upstream_inference_cost=usage.cost_details.upstream_inference_cost,
        )
    return out


def finish_status(finish_reason: str | None) -> tuple[ResponseStatus, IncompleteDetails | None]:
    if finish_reason == "length":
        return "incomplete", IncompleteDetails(reason="max_output_tokens")
    if finish_reason == "content_filter":
        return "incomplete", IncompleteDetails(reason="content_filter")
    return "completed", None


def _annotations(annotations: list[dict[str, Any]] | UnsetType) -> list[dict[str, Any]]:
    """Chat's nested ``url_citation`` annotations, flattened as Responses has them."""
    out: list[dict[str, Any]] = []
    for note in annotations or ():
        cite = note.get("url_citation")
        if note.get("type") == "url_citation" and isinstance(cite, dict):
            out.append(
                {
                    "type": "url_citation",
                    "url": cite.get("url", ""),
                    "title": cite.get("title", ""),
                    "start_index": cite.get("start_index", 0),
                    "end_index": cite.get("end_index", 0),
                }
            )
    return out


def choice_logprobs(logprobs: dict[str, Any] | None | UnsetType) -> list[dict[str, Any]]:
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    return list(content) if isinstance(content, list) else []


def reasoning_item(
    text: str, details: list[dict[str, Any]], status: ItemStatus, ident: str | None = None
) -> ReasoningItem | None:
    """The reasoning output item for chat ``reasoning`` text and ``reasoning_details``."""
    summaries = [d["summary"] for d in details if d.get("type") == "reasoning.summary"]
    encrypted = [d["data"] for d in details if d.get("type") == "reasoning.encrypted"]
    signatures = [
        d["signature"]
        for d in details
        if d.get("type") == "reasoning.text" and isinstance(d.get("signature"), str)
    ]
    if not (text or summaries or encrypted or signatures):
        return None
    item = ReasoningItem(
        id=ident or item_id("rs"),
        summary=[SummaryTextPart(text=s) for s in summaries or ([text] if text else [])],
        status=status,
        encrypted_content=encrypted[0] if encrypted else None,
    )
    if summaries and text:
        item.content = [ReasoningTextPart(text=text)]
    if signatures:
        item.signature = signatures[-1]
    formats = [d["format"] for d in details if isinstance(d.get("format"), str)]
    if formats:
        item.format = formats[0]
    return item


def from_result(
    result: ChatResult, translation: Translation, generation_id: str, created_at: int
) -> Response:
    """A chat completion as a finished Response object."""
    choice = result.choices[0] if result.choices else None
    finish = choice.finish_reason if choice else None
    status, incomplete = finish_status(finish)
    output: list[OutputItem] = []
    if choice is not None:
        output = _output_items(choice.message, choice.logprobs, translation.want_logprobs)
        if status == "incomplete" and output:
            output[-1].status = "incomplete"
    return msgspec.structs.replace(
        translation.template,
        id=response_id(generation_id),
        created_at=created_at,
        completed_at=int(time.time()),
        model=result.model,
        status=status,
        incomplete_details=incomplete,
        output=output,
        usage=response_usage(result.usage) if isinstance(result.usage, Usage) else None,
        openrouter_metadata=result.openrouter_metadata,
    )


def _output_items(
    message: ResponseMessage, logprobs: dict[str, Any] | None, want_logprobs: bool
) -> list[OutputItem]:
    items: list[OutputItem] = []
    reasoning = reasoning_item(
        message.reasoning if isinstance(message.reasoning, str) else "",
        message.reasoning_details or [],
        "completed",
    )
    if reasoning is not None:
        items.append(reasoning)
    calls = message.tool_calls or []
    refusal = message.refusal if isinstance(message.refusal, str) and message.refusal else None
    parts: list[OutputTextPart | RefusalPart] = []
    if message.content or not (calls or refusal):
        text = OutputTextPart(
            text=message.content or "", annotations=_annotations(message.annotations)
        )
        if want_logprobs:
            text.logprobs = choice_logprobs(logprobs)
        parts.append(text)
    if refusal is not None:
        parts.append(RefusalPart(refusal=refusal))
    if parts:
        items.append(MessageItem(id=item_id("msg"), status="completed", content=parts))
    for call in calls:
        items.append(
            FunctionCallItem(
                id=item_id("fc"),
                call_id=call.id,
                name=call.function.name,
                arguments=call.function.arguments,
                status="completed",
            )
        )
    return items
