"""Google's Gemini API (generativelanguage.googleapis.com): ``generateContent`` and its stream.

``POST {base_url}/{version}/models/{model}:generateContent`` answers one
``GenerateContentResponse``; ``:streamGenerateContent?alt=sse`` answers a server-sent event
per partial ``GenerateContentResponse`` (no ``[DONE]``: the stream simply ends). The key goes
in the ``x-goog-api-key`` header, never in the URL, so it cannot leak into access logs.

Order: constants, credentials, request building, response parsing, stream parsing, errors.
"""

from __future__ import annotations

import mimetypes
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import msgspec
from msgspec import UNSET, Struct

from switchyard.catalog import Catalog, Endpoint, ProviderSpec
from switchyard.errors import (
    InvalidRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchyard.providers.base import StreamState, UpstreamRequest
from switchyard.providers.data_url import is_data_url, parse_data_url
from switchyard.providers.openai import Credentials, resolve_credentials
from switchyard.settings import ProviderConfig
from switchyard.sse import SSEEvent, SSEParser
from switchyard.wire.chat import (
    AssistantMessage,
    AudioPart,
    ChatChunk,
    ChatRequest,
    ChatResult,
    Choice,
    CompletionTokensDetails,
    ContentPart,
    Delta,
    DeveloperMessage,
    FilePart,
    FunctionCall,
    FunctionCallDelta,
    FunctionTool,
    GrammarFormat,
    ImagePart,
    JsonObjectFormat,
    JsonSchemaFormat,
    LegacyVideoPart,
    NamedToolChoice,
    PromptTokensDetails,
    Reasoning,
    ResponseMessage,
    StreamChoice,
    SystemMessage,
    TextFormat,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    Usage,
    UserMessage,
    VideoPart,
)

# --- constants ----------------------------------------------------------------------------

# The google-genai SDK reads GOOGLE_API_KEY first, then GEMINI_API_KEY.
API_KEY_ENVS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
DEFAULT_API_VERSION = "v1beta"

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
# OpenRouter's reasoning_details entry carrying a Gemini thought signature for a tool call.
SIGNATURE_FORMAT = "google-gemini-v1"

_json_decode = msgspec.json.decode
_json_encode = msgspec.json.encode


# --- credentials --------------------------------------------------------------------------


def resolve_gemini_credentials(
    spec: ProviderSpec, config: ProviderConfig | None, environ: Mapping[str, str] | None = None
) -> Credentials | None:
    """Config file first, then the catalog's key variable, then the SDK's own two."""
    env = os.environ if environ is None else environ
    key_env = next(
        (name for name in (spec.api_key_env, *API_KEY_ENVS) if name and env.get(name)), None
    )
    if key_env != spec.api_key_env:
        spec = msgspec.structs.replace(spec, api_key_env=key_env)
    credentials = resolve_credentials(spec, config, env)
    if credentials is not None and credentials.api_version is None:
        credentials = Credentials(credentials.api_key, credentials.base_url, DEFAULT_API_VERSION)
    return credentials


# --- request building ---------------------------------------------------------------------


class GeminiAdapter:
    """generateContent over ``x-goog-api-key``; one adapter per configured provider."""

    def __init__(self, spec: ProviderSpec, credentials: Credentials, catalog: Catalog) -> None:
        self.spec = spec
        self.credentials = credentials
        self._catalog = catalog
        self._headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip"}
        if credentials.api_key:
            self._headers["x-goog-api-key"] = credentials.api_key

    def wants_inline(self, url: str) -> bool:
        # Gemini reads its own Files API and YouTube by reference; the rest the provider
        # fetches and inlines for us.
        return not _is_file_reference(url)

    def url(self, endpoint: Endpoint, *, stream: bool) -> str:
        base = self.credentials.base_url
        version = self.credentials.api_version or DEFAULT_API_VERSION
        model = quote(endpoint.upstream_model.removeprefix("models/"), safe="")
        if stream:
            return f"{base}/{version}/models/{model}:streamGenerateContent?alt=sse"
        return f"{base}/{version}/models/{model}:generateContent"

    def build_request(
        self, request: ChatRequest, endpoint: Endpoint, *, stream: bool
    ) -> UpstreamRequest:
        body = build_body(request, self._catalog.parameter_set(endpoint))
        return UpstreamRequest(
            "POST", self.url(endpoint, stream=stream), self._headers, _json_encode(body)
        )

    # --- response parsing -----------------------------------------------------------------

    def parse_response(self, body: bytes) -> ChatResult:
        response = _response_decoder.decode(body)
        if response.error is not None:
            raise _reported_error(self.spec.name, response.error)
        return to_result(response)

    # --- stream parsing -------------------------------------------------------------------

    def stream_parser(self) -> SSEParser:
        return SSEParser()

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatChunk]:
        response = _response_decoder.decode(event.data)
        if response.error is not None:
            raise _reported_error(self.spec.name, response.error)
        return to_chunks(response, state)

    # --- errors ---------------------------------------------------------------------------

    def map_error(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        return map_gemini_error(self.spec.name, status, headers, body)


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


def _is_file_reference(url: str) -> bool:
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
    if _is_file_reference(url):
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


_response_decoder = msgspec.json.Decoder(_Response)


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


# --- errors -------------------------------------------------------------------------------


def _error_object(body: bytes) -> Any:
    """Gemini's ``{"error": {code, message, status, details}}``, sometimes inside a list."""
    try:
        value = _json_decode(body)
    except msgspec.DecodeError:
        return body[:2000].decode("utf-8", "replace") or None
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, dict) and "error" in value:
        return value["error"]
    return value


def _reported_error(provider: str, error: dict[str, Any]) -> UpstreamError:
    message = error.get("message") or error.get("status") or "unknown error"
    return UpstreamError(f"{provider} reported an error: {message}", provider=provider, raw=error)


def map_gemini_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes
) -> UpstreamError:
    """Keep Google's error in metadata.raw; pick our status and retry policy."""
    raw = _error_object(body)
    detail = raw.get("message") if isinstance(raw, dict) else raw
    code = raw.get("status") if isinstance(raw, dict) else None
    message = f"{provider} returned HTTP {status}" + (f" {code}" if code else "")
    if detail:
        message += f": {detail}"
    retry_after = _retry_after(headers, raw)
    common: dict[str, Any] = {"provider": provider, "upstream_status": status, "raw": raw}
    if status == 429 or code == "RESOURCE_EXHAUSTED":
        return UpstreamRateLimited(message, retry_after=retry_after, **common)
    if status == 504 or code == "DEADLINE_EXCEEDED":
        return UpstreamTimeout(message, **common)
    if status == 503 or code == "UNAVAILABLE":
        return UpstreamUnavailable(message, retry_after=retry_after, **common)
    if status in (400, 413, 422) and code != "FAILED_PRECONDITION":
        # INVALID_ARGUMENT: the request itself is at fault; another provider would refuse it.
        # (FAILED_PRECONDITION is Google's "not available in your region / plan": not ours.)
        return UpstreamError(message, status=status, retryable=False, **common)
    return UpstreamError(message, **common)


_DELAY = re.compile(r"^(?P<seconds>\d+(?:\.\d+)?)s$")


def _retry_after(headers: Mapping[str, str], raw: Any) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
    # Quota errors carry a google.rpc.RetryInfo detail ("retryDelay": "37s").
    details = raw.get("details") if isinstance(raw, dict) else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        match = _DELAY.match(delay) if isinstance(delay, str) else None
        if match:
            return float(match.group("seconds"))
    return None
