"""Deterministic simulator of Google's Gemini API (generativelanguage.googleapis.com, v1beta).

Serves ``POST /{version}/models/{model}:generateContent`` and
``:streamGenerateContent`` (server-sent events with ``?alt=sse``, otherwise one JSON array,
as the real API does), authenticated by the ``x-goog-api-key`` header or ``?key=``. Requests
are validated the way Gemini validates them (unknown fields, roles, empty parts, function
responses answering the previous turn's calls, schema fields) and refused with Google's
error shape ``{"error": {"code", "message", "status", "details"}}``.

Replies are fixed text, function calls built from the declared schemas, or schema-shaped
JSON; ``/__sim/script`` (the conformance contract) replaces them with an exact reply.
Faults (latency, status, timeout, reset, disconnect mid-stream, slow tokens) are queued
through ``/__sim/faults`` with the same shapes as the OpenAI simulator.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from tests.conformance.contract import Script
from tests.simulators.openai_sim import Fault, _abort, example_from_schema, tokenize
from tests.simulators.threaded import SimulatorThread

DEFAULT_API_KEY = "gemini-sim-key"
DEFAULT_REPLY = "Hello from Gemini."
DEFAULT_THOUGHT = "Let me think this through."
DEFAULT_MODELS = (
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash-001",
    "gemini-2.0-flash",
)
MAX_RECORDED_REQUESTS = 1000

_T = TypeVar("_T")
JSON = dict[str, Any]
_encode = msgspec.json.encode
_decode = msgspec.json.decode

# The fields of GenerateContentRequest and GenerationConfig the API knows (camelCase or
# snake_case, as protobuf JSON accepts both); anything else is "Unknown name".
_REQUEST_FIELDS = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
    "model",
}
_GENERATION_FIELDS = {
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "mediaResolution",
}
_PART_DATA = {
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
}
_PART_FIELDS = _PART_DATA | {"thought", "thoughtSignature", "videoMetadata", "partMetadata"}
_DECLARATION_FIELDS = {
    "name",
    "description",
    "parameters",
    "parametersJsonSchema",
    "response",
    "responseJsonSchema",
    "behavior",
}
# Models that cannot stop thinking, and models that cannot think.
_ALWAYS_THINKING = ("gemini-2.5-pro",)
_NEVER_THINKING = ("gemini-2.0",)

# Canonical finish reasons rendered natively (the conformance contract's Script).
_NATIVE_FINISH = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


class SimConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Behaviour options settable through ``POST /__sim/config``."""

    reply: str = DEFAULT_REPLY
    thought: str = DEFAULT_THOUGHT
    # Prompt tokens reported as read from Gemini's implicit cache (capped at the prompt).
    cached_tokens: int = 0
    # Refuse every prompt with promptFeedback.blockReason (SAFETY, OTHER, ...).
    block_reason: str | None = None
    # Force the candidate's finishReason (SAFETY, RECITATION, MALFORMED_FUNCTION_CALL ...).
    finish_reason: str | None = None
    # Give function calls ids (newer Gemini API behaviour) or none (the common case).
    call_ids: bool = False
    models: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_MODELS))


class _FaultsBody(msgspec.Struct, forbid_unknown_fields=True):
    faults: list[Fault]
    sticky: bool = False


class _Invalid(Exception):
    """A request Gemini would refuse with 400 INVALID_ARGUMENT."""


@dataclass(slots=True)
class _Reply:
    thoughts: list[str] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)
    calls: list[JSON] = field(default_factory=list)  # FunctionCall objects
    finish_reason: str = "STOP"
    prompt_tokens: int = 0
    cached_tokens: int = 0
    # Explicit counts (scripts); otherwise counted from the pieces.
    candidates_tokens: int | None = None
    thoughts_tokens: int | None = None
    blocked: str | None = None

    def usage(self, final: bool = True) -> JSON:
        prompt = self.prompt_tokens
        if not final:
            # Gemini repeats usageMetadata on every event; until the end it knows the prompt.
            return {"promptTokenCount": prompt, "totalTokenCount": prompt}
        candidates = self.candidates_tokens
        if candidates is None:
            candidates = len(self.pieces) + sum(
                len(tokenize(_encode(c.get("args", {})).decode())) for c in self.calls
            )
        thoughts = self.thoughts_tokens if self.thoughts_tokens is not None else len(self.thoughts)
        usage: JSON = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": candidates,
            "totalTokenCount": prompt + candidates + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        }
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        if self.cached_tokens:
            usage["cachedContentTokenCount"] = self.cached_tokens
            usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": self.cached_tokens}]
        return usage


def google_error(status: int, code: str, message: str, details: list[JSON] | None = None) -> JSON:
    error: JSON = {"code": status, "message": message, "status": code}
    if details is not None:
        error["details"] = details
    return {"error": error}


def _error_response(
    status: int,
    code: str,
    message: str,
    details: list[JSON] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        body=_encode(google_error(status, code, message, details)),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _invalid(message: str) -> web.Response:
    return _error_response(400, "INVALID_ARGUMENT", message)


# --- validation ---------------------------------------------------------------------------


def _check_fields(obj: JSON, known: set[str], where: str) -> None:
    for name in obj:
        if name not in known and _camel(name) not in known:
            raise _Invalid(
                f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
                "Cannot find field."
            )


def _get(obj: JSON, name: str) -> Any:
    """A field by its camelCase or snake_case name, as the API accepts both."""
    return obj.get(name, obj.get(_snake(name)))


def _text_chars(parts: list[Any]) -> int:
    return sum(
        len(p["text"]) for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    )


def _validate_part(part: Any, where: str) -> None:
    if not isinstance(part, dict):
        raise _Invalid(f"Invalid value at '{where}', expected an object.")
    _check_fields(part, _PART_FIELDS, where)
    data = [name for name in part if name in _PART_DATA or _camel(name) in _PART_DATA]
    if len(data) != 1:
        raise _Invalid(
            f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have "
            "one initialized field"
        )
    inline = _get(part, "inlineData")
    if inline is not None:
        mime, payload = _get(inline, "mimeType"), inline.get("data")
        if not isinstance(mime, str) or not mime:
            raise _Invalid(f"* GenerateContentRequest.{where}.inline_data.mime_type: required")
        try:
            base64.b64decode(payload, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise _Invalid(
                f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
            ) from None
    file_data = _get(part, "fileData")
    if file_data is not None and not isinstance(_get(file_data, "fileUri"), str):
        raise _Invalid(f"* GenerateContentRequest.{where}.file_data.file_uri: required")
    call = _get(part, "functionCall")
    if call is not None and (
        not isinstance(call.get("name"), str) or not isinstance(call.get("args", {}), dict)
    ):
        raise _Invalid(f"* GenerateContentRequest.{where}.function_call: name is required")
    response = _get(part, "functionResponse")
    if response is not None and (
        not isinstance(response.get("name"), str) or not isinstance(response.get("response"), dict)
    ):
        raise _Invalid(
            f"* GenerateContentRequest.{where}.function_response: name and response (an "
            "object) are required"
        )


def _validate_contents(contents: Any) -> None:
    if not isinstance(contents, list) or not contents:
        raise _Invalid("* GenerateContentRequest.contents: contents is not specified")
    previous_calls: list[str] | None = None
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(content, dict):
            raise _Invalid(f"Invalid value at '{where}', expected an object.")
        _check_fields(content, {"role", "parts"}, where)
        role = content.get("role", "user")
        if role not in ("user", "model"):
            raise _Invalid("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise _Invalid(
                f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty."
            )
        for j, part in enumerate(parts):
            _validate_part(part, f"{where}.parts[{j}]")
        calls = [_get(p, "functionCall")["name"] for p in parts if _get(p, "functionCall")]
        responses = [
            _get(p, "functionResponse")["name"] for p in parts if _get(p, "functionResponse")
        ]
        if calls and role != "model":
            raise _Invalid("Please ensure that function call turns come from the model.")
        if responses:
            if role != "user" or not previous_calls:
                raise _Invalid(
                    "Please ensure that function response turn comes immediately after a "
                    "function call turn."
                )
            if len(responses) != len(previous_calls):
                raise _Invalid(
                    "Please ensure that the number of function response parts is equal to the "
                    "number of function call parts of the function call turn."
                )
            if sorted(responses) != sorted(previous_calls):
                raise _Invalid(
                    "Please ensure that the function response names match the function call "
                    "names of the function call turn."
                )
        previous_calls = calls


def _declarations(body: JSON) -> list[JSON]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _Invalid("Invalid value at 'tools', expected a list.")
    found: list[JSON] = []
    for i, tool in enumerate(tools):
        declarations = _get(tool, "functionDeclarations") if isinstance(tool, dict) else None
        for j, declaration in enumerate(declarations or ()):
            where = f"tools[{i}].function_declarations[{j}]"
            if not isinstance(declaration, dict):
                raise _Invalid(f"Invalid value at '{where}', expected an object.")
            _check_fields(declaration, _DECLARATION_FIELDS, where)
            name = declaration.get("name")
            if not isinstance(name, str) or not name:
                raise _Invalid(f"* GenerateContentRequest.{where}.name: Name cannot be empty.")
            if _get(declaration, "parameters") is not None and (
                _get(declaration, "parametersJsonSchema") is not None
            ):
                raise _Invalid(
                    f"* GenerateContentRequest.{where}: parameters and parameters_json_schema "
                    "are mutually exclusive"
                )
            found.append(declaration)
    return found


def _validate_generation(config: Any, model: str) -> JSON:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise _Invalid("Invalid value at 'generation_config', expected an object.")
    _check_fields(config, _GENERATION_FIELDS, "generation_config")
    count = _get(config, "candidateCount")
    if count is not None and count != 1:
        raise _Invalid("Multiple candidates is not enabled for this model.")
    limit = _get(config, "maxOutputTokens")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise _Invalid("* GenerateContentRequest.generation_config.max_output_tokens: must be > 0")
    temperature = config.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise _Invalid(
            "* GenerateContentRequest.generation_config.temperature: must be between 0 and 2"
        )
    schema = _get(config, "responseJsonSchema")
    if schema is not None and _get(config, "responseSchema") is not None:
        raise _Invalid("response_schema and response_json_schema are mutually exclusive")
    if (schema is not None or _get(config, "responseSchema") is not None) and _get(
        config, "responseMimeType"
    ) not in ("application/json", "text/x.enum"):
        raise _Invalid(
            "* GenerateContentRequest.generation_config.response_mime_type: must be "
            "application/json when a response schema is set"
        )
    thinking = _get(config, "thinkingConfig")
    if thinking is not None:
        _check_fields(thinking, {"thinkingBudget", "includeThoughts", "thinkingLevel"}, "thinking")
        if model.startswith(_NEVER_THINKING):
            raise _Invalid("Thinking is not enabled for models/" + model)
        if _get(thinking, "thinkingBudget") == 0 and model.startswith(_ALWAYS_THINKING):
            raise _Invalid("Budget 0 is invalid. This model only works in thinking mode.")
    return config


def prompt_tokens(body: JSON) -> int:
    """The simulator's token count for a request: characters / 4, plus 3 per turn."""
    contents = body.get("contents") or []
    system = _get(body, "systemInstruction")
    chars = sum(_text_chars(c.get("parts") or []) for c in contents)
    if isinstance(system, dict):
        chars += _text_chars(system.get("parts") or [])
    return max(1, chars // 4 + 3 * len(contents))


# --- replies ------------------------------------------------------------------------------


def _cut(pieces: list[str], end: int) -> list[str]:
    kept: list[str] = []
    offset = 0
    for piece in pieces:
        if offset + len(piece) >= end:
            if end > offset:
                kept.append(piece[: end - offset])
            break
        kept.append(piece)
        offset += len(piece)
    return kept


def _build_reply(body: JSON, model: str, config: SimConfig) -> _Reply:
    declarations = _declarations(body)
    generation = _validate_generation(_get(body, "generationConfig"), model)
    reply = _Reply(prompt_tokens=prompt_tokens(body))
    reply.cached_tokens = min(config.cached_tokens, reply.prompt_tokens)
    if config.block_reason:
        reply.blocked = config.block_reason
        return reply
    thinking = _get(generation, "thinkingConfig") or {}
    if _get(thinking, "includeThoughts") is True and _get(thinking, "thinkingBudget") != 0:
        reply.thoughts = tokenize(config.thought)

    calling = _get(_get(body, "toolConfig") or {}, "functionCallingConfig") or {}
    mode = calling.get("mode", "AUTO")
    allowed = _get(calling, "allowedFunctionNames")
    contents = body.get("contents") or []
    last = contents[-1] if contents else {}
    answered = any(_get(p, "functionResponse") for p in last.get("parts") or [])
    if declarations and mode != "NONE" and (mode == "ANY" or not answered):
        chosen = [d for d in declarations if not allowed or d["name"] in allowed]
        if not chosen:
            raise _Invalid("allowed_function_names names no declared function.")
        for n, declaration in enumerate(chosen[:2]):
            schema = _get(declaration, "parametersJsonSchema") or _get(declaration, "parameters")
            args = example_from_schema(schema or {"type": "object"})
            call: JSON = {
                "name": declaration["name"],
                "args": args if isinstance(args, dict) else {},
            }
            if config.call_ids:
                call["id"] = f"sim-call-{os.urandom(4).hex()}-{n}"
            reply.calls.append(call)
        return reply

    if _get(generation, "responseMimeType") == "application/json":
        schema = _get(generation, "responseJsonSchema") or _get(generation, "responseSchema")
        value = example_from_schema(schema) if schema else {"result": "ok"}
        reply.pieces = tokenize(_encode(value).decode())
    else:
        reply.pieces = tokenize(config.reply)
    stops = _get(generation, "stopSequences") or []
    text = "".join(reply.pieces)
    cuts = [i for s in stops if isinstance(s, str) and s and (i := text.find(s)) >= 0]
    if cuts:
        reply.pieces = _cut(reply.pieces, min(cuts))
    limit = _get(generation, "maxOutputTokens")
    if isinstance(limit, int) and len(reply.pieces) > limit:
        reply.pieces = reply.pieces[:limit]
        reply.finish_reason = "MAX_TOKENS"
    if config.finish_reason:
        reply.finish_reason = config.finish_reason
    return reply


def _scripted_reply(script: Script) -> _Reply:
    usage = script.usage
    reply = _Reply(
        thoughts=_split(script.reasoning or ""),
        pieces=_split(script.text or ""),
        calls=[{"id": c.id, "name": c.name, "args": c.arguments} for c in script.tool_calls],
        finish_reason=_NATIVE_FINISH[script.finish_reason],
        prompt_tokens=usage.prompt_tokens,
        cached_tokens=usage.cached_tokens,
        candidates_tokens=usage.completion_tokens - usage.reasoning_tokens,
        thoughts_tokens=usage.reasoning_tokens,
    )
    return reply


def _split(text: str) -> list[str]:
    """At least two pieces for any text of two characters or more (streams must reassemble)."""
    pieces = tokenize(text)
    if len(pieces) == 1 and len(text) > 1:
        pieces = [text[: len(text) // 2], text[len(text) // 2 :]]
    return pieces


@dataclass(slots=True)
class _Exchange:
    model: str
    reply: _Reply
    response_id: str = field(default_factory=lambda: os.urandom(9).hex())


def _candidate(parts: list[JSON], finish: str | None) -> JSON:
    candidate: JSON = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    return candidate


def _response_body(ex: _Exchange) -> JSON:
    reply = ex.reply
    body: JSON = {"modelVersion": ex.model, "responseId": ex.response_id}
    if reply.blocked:
        body["promptFeedback"] = {"blockReason": reply.blocked}
        body["usageMetadata"] = reply.usage()
        return body
    parts: list[JSON] = []
    if reply.thoughts:
        parts.append({"text": "".join(reply.thoughts), "thought": True})
    if reply.pieces:
        parts.append({"text": "".join(reply.pieces)})
    parts.extend({"functionCall": call} for call in reply.calls)
    body["candidates"] = [_candidate(parts, reply.finish_reason)]
    body["usageMetadata"] = reply.usage()
    return body


def _stream_events(ex: _Exchange) -> Iterator[JSON]:
    """The partial GenerateContentResponses of a stream; the last one finishes it."""
    reply = ex.reply
    head: JSON = {"modelVersion": ex.model, "responseId": ex.response_id}
    if reply.blocked:
        yield {
            **head,
            "promptFeedback": {"blockReason": reply.blocked},
            "usageMetadata": reply.usage(),
        }
        return
    parts: list[JSON] = [{"text": t, "thought": True} for t in reply.thoughts]
    parts.extend({"text": piece} for piece in reply.pieces)
    # Gemini sends each function call whole, in one part.
    parts.extend({"functionCall": call} for call in reply.calls)
    if not parts:
        parts = [{"text": ""}]
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        yield {
            **head,
            "candidates": [_candidate([part], reply.finish_reason if last else None)],
            "usageMetadata": reply.usage(final=last),
        }


# --- server -------------------------------------------------------------------------------


class GeminiSimulator:
    """An aiohttp server speaking the Gemini API's generateContent protocol."""

    def __init__(self, api_key: str = DEFAULT_API_KEY) -> None:
        self.api_key = api_key
        self.config = SimConfig()
        self.script: Script | None = None
        self._faults: collections.deque[Fault] = collections.deque()
        self._sticky: Fault | None = None
        self._requests: collections.deque[JSON] = collections.deque(maxlen=MAX_RECORDED_REQUESTS)
        self._stats = self._zero_stats()
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port: int | None = None

    @staticmethod
    def _zero_stats() -> dict[str, int]:
        return dict.fromkeys(
            (
                "requests",
                "faults_applied",
                "streams_started",
                "streams_completed",
                "cancelled_streams",
            ),
            0,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(client_max_size=64 * 1024**2)
        app.add_routes(
            [
                web.post("/{version}/models/{target}", self._generate),
                web.post("/__sim/script", self._post_script),
                web.delete("/__sim/script", self._delete_script),
                web.get("/__sim/requests", self._get_requests),
                web.delete("/__sim/requests", self._delete_requests),
                web.post("/__sim/faults", self._post_faults),
                web.delete("/__sim/faults", self._delete_faults),
                web.post("/__sim/config", self._post_config),
                web.post("/__sim/reset", self._post_reset),
                web.get("/__sim/stats", self._get_stats),
            ]
        )
        # handler_cancellation: a client that leaves cancels its handler at once, which is
        # how hung ("timeout") requests end and abandoned streams are noticed.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.1
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._host = host
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        assert self._port is not None, "simulator not started"
        return self._port

    @property
    def base_url(self) -> str:
        """What a Gemini client's base URL must be (the API version goes after it)."""
        return f"http://{self._host}:{self.port}"

    # -- controls --------------------------------------------------------------------------

    def configure(self, **options: Any) -> SimConfig:
        merged = {**msgspec.structs.asdict(self.config), **options}
        self.config = msgspec.convert(merged, SimConfig)
        return self.config

    def set_script(self, script: Script | None) -> None:
        self.script = script

    def add_faults(self, faults: list[Fault], sticky: bool = False) -> None:
        if sticky:
            self._sticky = faults[-1] if faults else None
        else:
            self._faults.extend(faults)

    def clear_faults(self) -> None:
        self._faults.clear()
        self._sticky = None

    def requests(self) -> list[JSON]:
        return list(self._requests)

    def clear_requests(self) -> None:
        self._requests.clear()

    def stats(self) -> dict[str, int]:
        return dict(self._stats)

    def reset(self) -> None:
        self.config = SimConfig()
        self.script = None
        self.clear_faults()
        self.clear_requests()
        self._stats = self._zero_stats()

    def _next_fault(self) -> Fault | None:
        return self._faults.popleft() if self._faults else self._sticky

    # -- protocol --------------------------------------------------------------------------

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        self._stats["requests"] += 1
        raw = await request.read()
        try:
            body: Any = _decode(raw)
        except msgspec.DecodeError:
            body = None
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        self._requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": {k: v for k, v in request.query.items() if k != "key"},
                "headers": {
                    k.lower(): v
                    for k, v in request.headers.items()
                    if k.lower() != "x-goog-api-key"
                },
                "auth_ok": key == self.api_key,
                "body": body,
            }
        )
        version = request.match_info["version"]
        model, _, method = request.match_info["target"].rpartition(":")
        if method not in ("generateContent", "streamGenerateContent") or version not in (
            "v1beta",
            "v1",
        ):
            return _error_response(
                404,
                "NOT_FOUND",
                f"Method not found: {version}/models/{request.match_info['target']}",
            )
        if not key:
            return _error_response(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if key != self.api_key:
            return _error_response(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        if model not in self.config.models:
            return _error_response(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version {version}, or is not supported "
                "for generateContent. Call ListModels to see the list of available models and "
                "their supported methods.",
            )
        if not isinstance(body, dict):
            return _invalid("Invalid JSON payload received. Expected an object.")
        try:
            _check_fields(body, _REQUEST_FIELDS, "")
            _validate_contents(body.get("contents"))
            system = _get(body, "systemInstruction")
            for j, part in enumerate((system or {}).get("parts") or []):
                _validate_part(part, f"system_instruction.parts[{j}]")
            reply = (
                _scripted_reply(self.script)
                if self.script is not None
                else _build_reply(body, model, self.config)
            )
        except _Invalid as exc:
            return _invalid(str(exc))

        fault = self._next_fault()
        if fault is not None:
            self._stats["faults_applied"] += 1
            if fault.kind == "latency":
                await asyncio.sleep(fault.ms / 1000)
            elif fault.kind == "status":
                return _fault_response(fault)
            elif fault.kind == "timeout":
                await asyncio.get_running_loop().create_future()
            elif fault.kind == "reset":
                return _abort(request)

        exchange = _Exchange(model, reply)
        if method == "streamGenerateContent":
            return await self._stream(
                request, exchange, fault, sse=request.query.get("alt") == "sse"
            )
        payload = _encode(_response_body(exchange))
        if fault is not None and fault.kind == "slow_tokens":
            await asyncio.sleep(fault.ms * max(1, len(reply.pieces)) / 1000)
        if fault is not None and fault.kind == "disconnect_mid_stream":
            response = web.StreamResponse()
            response.content_type = "application/json"
            response.content_length = len(payload)
            await response.prepare(request)
            await response.write(payload[: len(payload) // 2])
            return _abort(request)
        return web.Response(body=payload, content_type="application/json")

    async def _stream(
        self, request: web.Request, exchange: _Exchange, fault: Fault | None, *, sse: bool
    ) -> web.StreamResponse:
        delay = fault.ms / 1000 if fault is not None and fault.kind == "slow_tokens" else 0.0
        cut_after = (
            fault.after_chunks
            if fault is not None and fault.kind == "disconnect_mid_stream"
            else -1
        )
        response = web.StreamResponse()
        response.content_type = "text/event-stream" if sse else "application/json"
        response.charset = "utf-8"
        self._stats["streams_started"] += 1
        try:
            await response.prepare(request)
            if not sse:
                # Without alt=sse the API streams one JSON array of responses.
                await response.write(_encode(list(_stream_events(exchange))))
                self._stats["streams_completed"] += 1
                return response
            for sent, event in enumerate(_stream_events(exchange)):
                if sent == cut_after:
                    return _abort(request)
                if delay and sent:
                    await asyncio.sleep(delay)
                # Gemini frames events with CRLF line ends.
                await response.write(b"data: " + _encode(event) + b"\r\n\r\n")
            self._stats["streams_completed"] += 1
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            self._stats["cancelled_streams"] += 1
            raise

    # -- control routes --------------------------------------------------------------------

    async def _post_script(self, request: web.Request) -> web.Response:
        try:
            self.script = msgspec.json.decode(await request.read(), type=Script)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"script": True})

    async def _delete_script(self, request: web.Request) -> web.Response:
        self.script = None
        return web.json_response({"script": False})

    async def _get_requests(self, request: web.Request) -> web.Response:
        return web.Response(body=_encode(self.requests()), content_type="application/json")

    async def _delete_requests(self, request: web.Request) -> web.Response:
        self.clear_requests()
        return web.json_response([])

    async def _post_faults(self, request: web.Request) -> web.Response:
        try:
            parsed = msgspec.json.decode(await request.read(), type=_FaultsBody)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.add_faults(parsed.faults, parsed.sticky)
        return web.json_response({"queued": len(self._faults)})

    async def _delete_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"queued": 0})

    async def _post_config(self, request: web.Request) -> web.Response:
        try:
            options = _decode(await request.read())
            if not isinstance(options, dict):
                raise msgspec.ValidationError("expected a JSON object")
            return web.Response(
                body=_encode(self.configure(**options)), content_type="application/json"
            )
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return web.json_response({"error": str(exc)}, status=400)

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    async def _get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())


def _fault_response(fault: Fault) -> web.Response:
    status = fault.status
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    if status == 429:
        delay = f"{fault.retry_after:g}s" if fault.retry_after is not None else "30s"
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_"
                        "paid_tier_input_token_count",
                        "quotaId": "GenerateContentPaidTierInputTokensPerModelPerMinute",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
        ]
        message = "You exceeded your current quota, please check your plan and billing details."
        # Google sends the delay in the body, not as a Retry-After header.
        return _error_response(429, "RESOURCE_EXHAUSTED", message, details)
    if status == 503:
        return _error_response(
            503, "UNAVAILABLE", "The model is overloaded. Please try again later.", None, headers
        )
    if status == 500:
        return _error_response(
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
        )
    if status == 504:
        return _error_response(
            504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."
        )
    codes = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
    return _error_response(status, codes.get(status, "UNKNOWN"), f"Simulated HTTP {status}.")


# --- running in a thread ------------------------------------------------------------------


class GeminiSimulatorHandle(SimulatorThread[GeminiSimulator]):
    """The simulator's controls, callable from the tests' thread."""

    @property
    def base_url(self) -> str:
        return self.simulator.base_url

    @property
    def api_key(self) -> str:
        return self.simulator.api_key

    def add_faults(self, *faults: dict[str, Any] | Fault, sticky: bool = False) -> None:
        parsed = [f if isinstance(f, Fault) else msgspec.convert(f, Fault) for f in faults]
        self._call(lambda: self.simulator.add_faults(parsed, sticky))

    def configure(self, **options: Any) -> SimConfig:
        return self._call(lambda: self.simulator.configure(**options))

    def set_script(self, script: Script | None) -> None:
        self._call(lambda: self.simulator.set_script(script))

    def requests(self) -> list[JSON]:
        return self._call(self.simulator.requests)

    def stats(self) -> dict[str, int]:
        return self._call(self.simulator.stats)

    def reset(self) -> None:
        self._call(self.simulator.reset)


def run_in_thread(api_key: str = DEFAULT_API_KEY) -> GeminiSimulatorHandle:
    simulator = GeminiSimulator(api_key=api_key)
    return GeminiSimulatorHandle(simulator, simulator.start(), "gemini-sim")
