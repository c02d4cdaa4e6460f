"""Chat request -> Gemini ``GenerateContentRequest`` body. No I/O.

Turns must alternate user / model, tool results travel as ``functionResponse`` parts in a user
turn, and media is inlined from data: URLs (or passed by reference for Gemini's own Files API
and YouTube). Only the parameters the endpoint supports are sent.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET

from switchyard.errors import InvalidRequest
from switchyard.providers.data_url import is_data_url, parse_data_url
from switchyard.wire.chat import (
    AssistantMessage,
    AudioPart,
    ChatRequest,
    ContentPart,
    DeveloperMessage,
    FilePart,
    FunctionTool,
    GrammarFormat,
    ImagePart,
    JsonObjectFormat,
    JsonSchemaFormat,
    LegacyVideoPart,
    NamedToolChoice,
    Reasoning,
    SystemMessage,
    TextFormat,
    TextPart,
    ToolMessage,
    UserMessage,
    VideoPart,
)

# reasoning.effort as a thinking budget, the same steps Google's own OpenAI-compatible
# endpoint uses (low 1K, medium 8K, high 24K; "none" turns thinking off where allowed).
EFFORT_BUDGETS = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 24576,
    "max": 24576,
}
DYNAMIC_BUDGET = -1  # the model decides how long to think

# Files Gemini can read by reference: its own Files API and YouTube. Anything else must be
# inlined, and an adapter does no I/O, so the client has to send a data: URL.
_FILE_HOSTS = frozenset(
    {"generativelanguage.googleapis.com", "www.youtube.com", "youtube.com", "youtu.be"}
)

_json_decode = msgspec.json.decode


def build_body(request: ChatRequest, supported: frozenset[str]) -> dict[str, Any]:
    """The GenerateContentRequest for ``request``, keeping only supported parameters."""
    system, contents = _contents(request)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    if request.tools is not UNSET and request.tools and "tools" in supported:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
        tool_config = _tool_config(request)
        if tool_config is not None:
            body["toolConfig"] = {"functionCallingConfig": tool_config}
    generation = _generation_config(request, supported)
    if generation:
        body["generationConfig"] = generation
    return body


def _contents(request: ChatRequest) -> tuple[list[str], list[dict[str, Any]]]:
    """System text, and the conversation as alternating user / model turns."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool_call_id -> function name, the latest call wins
    for i, message in enumerate(request.messages):
        where = f"messages[{i}]"
        if isinstance(message, (SystemMessage, DeveloperMessage)):
            text = _joined_text(message.content)
            if text:
                system.append(text)
            continue
        if isinstance(message, UserMessage):
            role, parts = "user", _user_parts(message.content, f"{where}.content")
        elif isinstance(message, AssistantMessage):
            role, parts = "model", _model_parts(message, where)
            for call in message.tool_calls or ():
                call_names[call.id] = call.function.name
        else:
            role, parts = "user", [_function_response(message, call_names, where)]
        if not parts:
            continue  # Gemini refuses a turn without parts
        if turns and turns[-1]["role"] == role:
            # Gemini wants turns to alternate: consecutive tool results (and a user message
            # following them) travel in one user turn.
            turns[-1]["parts"].extend(parts)
        else:
            turns.append({"role": role, "parts": parts})
    if not turns:
        raise InvalidRequest(
            "Gemini needs at least one user or assistant message with content", field="messages"
        )
    return system, turns


def _joined_text(content: str | list[TextPart] | list[ContentPart]) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if isinstance(part, TextPart))


def _user_parts(content: str | list[ContentPart], where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        field = f"{where}[{j}]"
        if isinstance(part, TextPart):
            if part.text:
                parts.append({"text": part.text})
        elif isinstance(part, ImagePart):
            parts.append(_media_part(part.image_url.url, f"{field}.image_url.url"))
        elif isinstance(part, AudioPart):
            parts.append(_audio_part(part.input_audio, f"{field}.input_audio"))
        elif isinstance(part, FilePart):
            data = part.file.get("file_data") or part.file.get("url")
            if not isinstance(data, str):
                raise InvalidRequest(
                    "A file part needs `file_data` (a data: URL) for Gemini", field=f"{field}.file"
                )
            parts.append(_media_part(data, f"{field}.file.file_data", part.file.get("filename")))
        elif isinstance(part, (VideoPart, LegacyVideoPart)):
            url = part.video_url.get("url")
            if not isinstance(url, str):
                raise InvalidRequest("A video part needs a `url`", field=f"{field}.video_url.url")
            parts.append(_media_part(url, f"{field}.video_url.url"))
    return parts


def is_file_reference(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme == "https" and parts.hostname in _FILE_HOSTS


def _media_part(url: str, field: str, filename: object = None) -> dict[str, Any]:
    """An inline part from a data: URL, or a file reference Gemini can fetch itself."""
    if is_data_url(url):
        inline = parse_data_url(url, field)
        mime = inline.media_type or _guess_mime(filename) or "application/octet-stream"
        return {"inlineData": {"mimeType": mime, "data": inline.data}}
    parts = urlsplit(url)
    if is_file_reference(url):
        file_data: dict[str, str] = {"fileUri": url}
        guessed = _guess_mime(parts.path)
        if guessed:
            file_data["mimeType"] = guessed
        return {"fileData": file_data}
    raise InvalidRequest(
        f"`{field}`: Gemini reads media only from data: URLs, Gemini Files API URIs and YouTube "
        "links; download the file and send it as a base64 data: URL",
        field=field,
    )


def _guess_mime(name: object) -> str | None:
    return mimetypes.guess_type(name)[0] if isinstance(name, str) and name else None


def _audio_part(audio: dict[str, Any], field: str) -> dict[str, Any]:
    data, kind = audio.get("data"), audio.get("format")
    if not isinstance(data, str) or not isinstance(kind, str):
        raise InvalidRequest("`input_audio` needs `data` (base64) and `format`", field=field)
    return _media_part(f"data:audio/{kind};base64,{data}", f"{field}.data")


def _model_parts(message: AssistantMessage, where: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    content = message.content
    if isinstance(content, str):
        if content:
            parts.append({"text": content})
    elif isinstance(content, list):
        text = _joined_text(content)
        if text:
            parts.append({"text": text})
    signatures = _signatures(message.reasoning_details)
    for j, call in enumerate(message.tool_calls or ()):
        field = f"{where}.tool_calls[{j}].function.arguments"
        function_call = {
            "id": call.id,
            "name": call.function.name,
            "args": _arguments(call.function.arguments, field),
        }
        part: dict[str, Any] = {"functionCall": function_call}
        signature = signatures.get(call.id)
        if signature:
            # Gemini asks for the signature it gave with a call back with that call.
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _signatures(details: list[dict[str, Any]] | msgspec.UnsetType) -> dict[str, str]:
    if not isinstance(details, list):
        return {}
    return {
        item["id"]: item["data"]
        for item in details
        if item.get("type") == "reasoning.encrypted"
        and isinstance(item.get("id"), str)
        and isinstance(item.get("data"), str)
    }


def _arguments(arguments: str, field: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        value = _json_decode(arguments)
    except msgspec.DecodeError:
        raise InvalidRequest(
            f"`{field}` is not valid JSON; Gemini needs the arguments as a JSON object",
            field=field,
        ) from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"`{field}` must encode a JSON object", field=field)
    return value


def _function_response(
    message: ToolMessage, call_names: dict[str, str], where: str
) -> dict[str, Any]:
    name = call_names.get(message.tool_call_id)
    if name is None:
        field = f"{where}.tool_call_id"
        raise InvalidRequest(
            f"`{field}` ({message.tool_call_id!r}) matches no earlier assistant tool call; "
            "Gemini needs the called function's name for each tool result",
            field=field,
        )
    # "output" is the key Gemini documents for a function's result.
    response = {"output": _joined_text(message.content)}
    return {"functionResponse": {"id": message.tool_call_id, "name": name, "response": response}}


def _declaration(tool: FunctionTool) -> dict[str, Any]:
    function = tool.function
    declaration: dict[str, Any] = {"name": function.name}
    if function.description is not UNSET:
        declaration["description"] = function.description
    if function.parameters is not UNSET and function.parameters:
        # Gemini takes the JSON Schema as is ($defs, $ref, anyOf, additionalProperties ...)
        # here, where the older `parameters` field takes only an OpenAPI subset.
        declaration["parametersJsonSchema"] = function.parameters
    return declaration


def _tool_config(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice):
        return {"mode": "ANY", "allowedFunctionNames": [choice.function.name]}
    if choice == "required":
        return {"mode": "ANY"}
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "auto":
        return {"mode": "AUTO"}
    return None


def _generation_config(request: ChatRequest, supported: frozenset[str]) -> dict[str, Any]:
    config: dict[str, Any] = {"candidateCount": 1}
    limit = request.output_limit()
    if limit is not None and ("max_tokens" in supported or "max_completion_tokens" in supported):
        config["maxOutputTokens"] = limit
    for name, native in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = getattr(request, name)
        if value is not UNSET and value is not None and name in supported:
            config[native] = value
    stop = request.stop
    if stop is not UNSET and stop is not None and "stop" in supported:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if request.response_format is not UNSET and "response_format" in supported:
        config.update(_response_format(request))
    if "reasoning" in supported:
        thinking = _thinking_config(request)
        if thinking is not None:
            config["thinkingConfig"] = thinking
    return config


def _response_format(request: ChatRequest) -> dict[str, Any]:
    fmt = request.response_format
    if isinstance(fmt, TextFormat):
        return {}
    if isinstance(fmt, JsonObjectFormat):
        return {"responseMimeType": "application/json"}
    if isinstance(fmt, JsonSchemaFormat):
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if fmt.json_schema.schema is not UNSET:
            config["responseJsonSchema"] = fmt.json_schema.schema
        return config
    kind = "grammar" if isinstance(fmt, GrammarFormat) else "python"
    raise InvalidRequest(
        f"response_format type `{kind}` is not supported by Gemini models",
        field="response_format.type",
    )


def _thinking_config(request: ChatRequest) -> dict[str, Any] | None:
    budget: int | None = None
    exclude = False
    reasoning = request.reasoning
    if isinstance(reasoning, Reasoning):
        exclude = reasoning.exclude is True
        if isinstance(reasoning.max_tokens, int):
            budget = reasoning.max_tokens
        elif isinstance(reasoning.effort, str):
            budget = EFFORT_BUDGETS[reasoning.effort]
        elif reasoning.enabled is False:
            budget = 0
        elif reasoning.enabled is True or not exclude:
            budget = DYNAMIC_BUDGET
    elif isinstance(request.reasoning_effort, str):
        budget = EFFORT_BUDGETS[request.reasoning_effort]
    if budget is None and not exclude:
        return None
    config: dict[str, Any] = {}
    if budget is not None:
        config["thinkingBudget"] = budget
    config["includeThoughts"] = budget != 0 and not exclude
    return config
