"""AWS Bedrock's Converse API: one message format for every model Bedrock hosts.

``POST {endpoint}/model/{modelId}/converse`` and ``/converse-stream``, signed with SigV4
(botocore does the signing) or sent with a Bedrock API key as a Bearer token. Streams use
AWS's binary event-stream framing, decoded by botocore's parser.

Order: constants, credentials, request building, response parsing, stream parsing, errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec
from msgspec import UNSET

from switchyard.catalog import Catalog, Endpoint, ProviderSpec
from switchyard.errors import InvalidRequest, UpstreamError
from switchyard.providers.base import StreamState, UpstreamRequest
from switchyard.providers.data_url import is_data_url, parse_data_url
from switchyard.providers.openai import map_openai_error
from switchyard.settings import ProviderConfig
from switchyard.sse import SSEEvent
from switchyard.wire.chat import (
    AssistantMessage,
    ChatChunk,
    ChatRequest,
    ChatResult,
    Choice,
    CompletionTokensDetails,
    Delta,
    DeveloperMessage,
    FunctionCall,
    FunctionCallDelta,
    ImagePart,
    Message,
    NamedToolChoice,
    PromptTokensDetails,
    ResponseMessage,
    StreamChoice,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    Usage,
    UserMessage,
)

if TYPE_CHECKING:
    from botocore.credentials import Credentials as AwsCredentials

# botocore is imported where it is used, not here: the catalog always names this provider,
# and a deployment without AWS credentials should not pay botocore's memory to load it.

# --- constants ----------------------------------------------------------------------------

SERVICE = "bedrock"  # the SigV4 signing name of bedrock-runtime
DEFAULT_REGION = "us-east-1"

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": "error",
    "malformed_tool_use": "error",
}
# Converse accepts these image formats, named without the "image/" prefix.
IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
# Exceptions in a stream, by event type, and the HTTP status Bedrock gives them elsewhere.
STREAM_EXCEPTION_STATUS = {
    "throttlingException": 429,
    "serviceUnavailableException": 503,
    "internalServerException": 500,
    "modelStreamErrorException": 424,
    "validationException": 400,
}


# --- credentials --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BedrockCredentials:
    base_url: str
    region: str
    aws: AwsCredentials | None  # SigV4 signing
    api_key: str | None  # a Bedrock API key, sent as a Bearer token instead

    def __repr__(self) -> str:
        return (
            f"BedrockCredentials(base_url={self.base_url!r}, region={self.region!r}, "
            f"aws={'set' if self.aws else None}, api_key={'set' if self.api_key else None})"
        )


def resolve_bedrock_credentials(
    spec: ProviderSpec, config: ProviderConfig | None, environ: Mapping[str, str] | None = None
) -> BedrockCredentials | None:
    """The config file first, then the variables boto3 reads; None when unusable.

    Only static credentials are used: the rest of boto3's chain (profiles, instance
    metadata) means file and network lookups that a router should not do implicitly.
    """
    env = os.environ if environ is None else environ
    config = config or ProviderConfig()
    if not config.enabled:
        return None
    region = (
        config.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    )
    base_url = (
        config.base_url
        or (env.get(spec.base_url_env) if spec.base_url_env else None)
        or f"https://bedrock-runtime.{region}.amazonaws.com"
    ).rstrip("/")
    api_key = config.api_key or (env.get(spec.api_key_env) if spec.api_key_env else None)
    access_key = config.aws_access_key_id or env.get("AWS_ACCESS_KEY_ID")
    secret_key = config.aws_secret_access_key or env.get("AWS_SECRET_ACCESS_KEY")
    token = config.aws_session_token or env.get("AWS_SESSION_TOKEN")
    if not (access_key and secret_key) and not api_key:
        return None
    aws = None
    if access_key and secret_key:
        from botocore.credentials import Credentials as AwsCredentials

        aws = AwsCredentials(access_key, secret_key, token)
    return BedrockCredentials(base_url, region, aws, api_key or None)


# --- request building ---------------------------------------------------------------------


def _text_of(content: str | list[TextPart]) -> str:
    return content if isinstance(content, str) else "".join(part.text for part in content)


def _image_block(part: ImagePart, field: str) -> dict[str, Any]:
    url = part.image_url.url
    if not is_data_url(url):
        # Converse takes image bytes or S3 locations only; another provider may take URLs.
        raise UpstreamError(
            "Amazon Bedrock needs images inline as data: URLs",
            provider="Amazon Bedrock",
            status=400,
            retryable=True,
        )
    inline = parse_data_url(url, field)
    image_format = inline.media_type.removeprefix("image/")
    if image_format == "jpg":
        image_format = "jpeg"
    if image_format not in IMAGE_FORMATS or not inline.media_type.startswith("image/"):
        raise InvalidRequest(
            f"Images must be base64 data: URLs of type {', '.join(sorted(IMAGE_FORMATS))}",
            field=field,
        )
    # JSON carries the blob as base64, which is exactly what the data: URL holds.
    return {"image": {"format": image_format, "source": {"bytes": inline.data}}}


def _content_blocks(content: Any, field: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for i, part in enumerate(content or []):
        if isinstance(part, TextPart):
            if part.text:
                blocks.append({"text": part.text})
            if part.cache_control is not UNSET:
                blocks.append({"cachePoint": {"type": "default"}})
        elif isinstance(part, ImagePart):
            blocks.append(_image_block(part, f"{field}[{i}].image_url.url"))
        else:
            raise UpstreamError(
                f"Amazon Bedrock does not take {type(part).__name__} content here",
                provider="Amazon Bedrock",
                status=400,
                retryable=True,
            )
    return blocks


def _arguments(call: ToolCall, field: str) -> Any:
    try:
        value = msgspec.json.decode(call.function.arguments or "{}")
    except msgspec.DecodeError:
        raise InvalidRequest("Tool call arguments must be a JSON object", field=field) from None
    if not isinstance(value, dict):
        raise InvalidRequest("Tool call arguments must be a JSON object", field=field)
    return value


def _assistant_blocks(message: AssistantMessage, index: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    # Reasoning with a signature must go back first, exactly as the model produced it.
    for detail in message.reasoning_details or []:
        if detail.get("type") == "reasoning.text" and detail.get("signature"):
            text = {"text": detail.get("text") or "", "signature": detail["signature"]}
            blocks.append({"reasoningContent": {"reasoningText": text}})
        elif detail.get("type") == "reasoning.encrypted" and detail.get("data"):
            blocks.append({"reasoningContent": {"redactedContent": detail["data"]}})
    if message.content not in (None, UNSET):
        blocks.extend(_content_blocks(message.content, f"messages[{index}].content"))
    for j, call in enumerate(message.tool_calls or []):
        field = f"messages[{index}].tool_calls[{j}].function.arguments"
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": call.id,
                    "name": call.function.name,
                    "input": _arguments(call, field),
                }
            }
        )
    return blocks


def _tool_result(message: ToolMessage, index: int) -> dict[str, Any]:
    content = _content_blocks(message.content, f"messages[{index}].content")
    return {
        "toolResult": {
            "toolUseId": message.tool_call_id,
            "content": content or [{"text": ""}],
        }
    }


def build_messages(
    messages: list[Message],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """System blocks, and turns that alternate user / assistant as Converse requires."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # consecutive turns of one role merge
        else:
            turns.append({"role": role, "content": blocks})

    for index, message in enumerate(messages):
        if isinstance(message, SystemMessage | DeveloperMessage):
            text = _text_of(message.content)
            if text:
                system.append({"text": text})
        elif isinstance(message, UserMessage):
            add("user", _content_blocks(message.content, f"messages[{index}].content"))
        elif isinstance(message, AssistantMessage):
            add("assistant", _assistant_blocks(message, index))
        else:
            add("user", [_tool_result(message, index)])
    if turns and turns[0]["role"] != "user":
        # Converse must open with a user turn; an empty one keeps the assistant's words.
        turns.insert(0, {"role": "user", "content": [{"text": "."}]})
    return system, turns


def _tool_config(request: ChatRequest) -> dict[str, Any] | None:
    if request.tools is UNSET or not request.tools:
        return None
    tools = []
    for tool in request.tools:
        spec: dict[str, Any] = {
            "name": tool.function.name,
            "inputSchema": {"json": tool.function.parameters or {"type": "object"}},
        }
        if isinstance(tool.function.description, str) and tool.function.description:
            spec["description"] = tool.function.description
        tools.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": tools}
    choice = request.tool_choice
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, NamedToolChoice):
        config["toolChoice"] = {"tool": {"name": choice.function.name}}
    # "none": Converse has no such choice, and needs the tools whenever the conversation
    # holds tool blocks, so they are sent without a choice.
    return config


def _sigv4(aws: AwsCredentials, region: str) -> Any:
    from botocore.auth import SigV4Auth

    return SigV4Auth(aws, SERVICE, region)


class BedrockAdapter:
    def wants_inline(self, url: str) -> bool:
        # Converse takes image bytes only; the provider fetches http(s) URLs for us.
        return True

    def __init__(
        self, spec: ProviderSpec, credentials: BedrockCredentials, catalog: Catalog
    ) -> None:
        self.spec = spec
        self.credentials = credentials
        self._catalog = catalog
        self._signer = _sigv4(credentials.aws, credentials.region) if credentials.aws else None

    def url(self, endpoint: Endpoint, *, stream: bool) -> str:
        action = "converse-stream" if stream else "converse"
        return (
            f"{self.credentials.base_url}/model/{quote(endpoint.upstream_model, safe='')}/{action}"
        )

    def build_request(
        self, request: ChatRequest, endpoint: Endpoint, *, stream: bool
    ) -> UpstreamRequest:
        system, messages = build_messages(request.messages)
        body: dict[str, Any] = {"messages": messages}
        if system:
            body["system"] = system
        inference: dict[str, Any] = {}
        limit = request.output_limit()
        if limit is not None:
            inference["maxTokens"] = limit
        if isinstance(request.temperature, float | int):
            inference["temperature"] = request.temperature
        if isinstance(request.top_p, float | int):
            inference["topP"] = request.top_p
        if isinstance(request.stop, str):
            inference["stopSequences"] = [request.stop]
        elif isinstance(request.stop, list):
            inference["stopSequences"] = request.stop
        if inference:
            body["inferenceConfig"] = inference
        tool_config = _tool_config(request)
        if tool_config is not None:
            body["toolConfig"] = tool_config
        payload = msgspec.json.encode(body)
        return self._signed(self.url(endpoint, stream=stream), payload)

    def _signed(self, url: str, payload: bytes) -> UpstreamRequest:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._signer is None:
            headers["Authorization"] = f"Bearer {self.credentials.api_key}"
            return UpstreamRequest("POST", url, headers, payload)
        from botocore.awsrequest import AWSRequest

        aws_request = AWSRequest(method="POST", url=url, data=payload, headers=headers)
        self._signer.add_auth(aws_request)
        return UpstreamRequest("POST", url, dict(aws_request.headers.items()), payload)

    # --- response parsing -----------------------------------------------------------------

    def parse_response(self, body: bytes) -> ChatResult:
        data = msgspec.json.decode(body)
        if not isinstance(data, dict):
            raise msgspec.ValidationError("a Converse response is a JSON object")
        blocks = ((data.get("output") or {}).get("message") or {}).get("content") or []
        text: list[str] = []
        reasoning: list[str] = []
        details: list[dict[str, Any]] = []
        calls: list[ToolCall] = []
        for block in blocks:
            if "text" in block:
                text.append(block["text"])
            elif "toolUse" in block:
                use = block["toolUse"]
                arguments = msgspec.json.encode(use.get("input", {})).decode()
                calls.append(ToolCall(use["toolUseId"], FunctionCall(use["name"], arguments)))
            elif "reasoningContent" in block:
                _reasoning_block(block["reasoningContent"], reasoning, details)
        native = data.get("stopReason")
        message = ResponseMessage(content="".join(text) if text or not calls else None)
        if calls:
            message.tool_calls = calls
        if reasoning or details:
            message.reasoning = "".join(reasoning)
            message.reasoning_details = details
        return ChatResult(
            id="",
            created=0,
            model="",
            choices=[
                Choice(
                    index=0,
                    message=message,
                    finish_reason=normalise_finish(native),
                    native_finish_reason=native,
                )
            ],
            usage=parse_usage(data.get("usage") or {}),
        )

    # --- stream parsing -------------------------------------------------------------------

    def stream_parser(self) -> EventStreamParser:
        return EventStreamParser()

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatChunk]:
        kind = event.event or ""
        if kind.startswith("exception:"):
            self._raise_stream_exception(kind.removeprefix("exception:"), event.data)
        data = msgspec.json.decode(event.data)
        extra = state.extra
        tool_index: dict[int, int] = extra.setdefault("tool_index", {})  # type: ignore[assignment]
        if kind == "messageStart":
            return [_chunk(Delta(role="assistant", content=""))]
        if kind == "contentBlockStart":
            use = (data.get("start") or {}).get("toolUse")
            if use is None:
                return []
            index = tool_index[data["contentBlockIndex"]] = len(tool_index)
            call = ToolCallDelta(
                index=index,
                id=use["toolUseId"],
                type="function",
                function=FunctionCallDelta(name=use["name"], arguments=""),
            )
            return [_chunk(Delta(tool_calls=[call]))]
        if kind == "contentBlockDelta":
            delta = data.get("delta") or {}
            if "text" in delta:
                return [_chunk(Delta(content=delta["text"]))]
            if "toolUse" in delta:
                index = tool_index.get(data["contentBlockIndex"], 0)
                fragment = FunctionCallDelta(arguments=delta["toolUse"].get("input", ""))
                return [_chunk(Delta(tool_calls=[ToolCallDelta(index=index, function=fragment)]))]
            if "reasoningContent" in delta:
                return [_reasoning_chunk(delta["reasoningContent"])]
            return []
        if kind == "messageStop":
            native = data.get("stopReason")
            choice = StreamChoice(
                index=0,
                delta=Delta(),
                finish_reason=normalise_finish(native),
                native_finish_reason=native,
            )
            return [ChatChunk(id="", created=0, model="", choices=[choice])]
        if kind == "metadata":
            state.usage_seen = True
            usage = parse_usage(data.get("usage") or {})
            return [ChatChunk(id="", created=0, model="", choices=[], usage=usage)]
        return []  # contentBlockStop, and events newer than this adapter

    def _raise_stream_exception(self, kind: str, data: bytes) -> None:
        try:
            message = msgspec.json.decode(data).get("message")
        except (msgspec.DecodeError, AttributeError):
            message = None
        status = STREAM_EXCEPTION_STATUS.get(kind, 500)
        raise UpstreamError(
            f"{self.spec.name} reported {kind} mid-stream" + (f": {message}" if message else ""),
            provider=self.spec.name,
            upstream_status=status,
            raw={"type": kind, "message": message},
        )

    # --- errors ---------------------------------------------------------------------------

    def map_error(self, status: int, headers: dict[str, str], body: bytes) -> UpstreamError:
        # Bedrock names the error in a header ("ThrottlingException:http://...") and sends
        # {"message": ...}; keep both as the raw error under the common status policy.
        kind = (headers.get("x-amzn-ErrorType") or headers.get("x-amzn-errortype") or "").split(
            ":"
        )[0]
        try:
            decoded = msgspec.json.decode(body)
            message = decoded.get("message") if isinstance(decoded, dict) else None
        except msgspec.DecodeError:
            message = body[:2000].decode("utf-8", "replace") or None
        raw = {"type": kind or None, "message": message}
        return map_openai_error(
            self.spec.name, status, headers, msgspec.json.encode({"error": raw})
        )


def _reasoning_block(
    block: dict[str, Any], reasoning: list[str], details: list[dict[str, Any]]
) -> None:
    text_block = block.get("reasoningText")
    if text_block is not None:
        reasoning.append(text_block.get("text", ""))
        detail: dict[str, Any] = {
            "type": "reasoning.text",
            "text": text_block.get("text", ""),
            "index": len(details),
        }
        if text_block.get("signature"):
            detail["signature"] = text_block["signature"]
        details.append(detail)
    elif block.get("redactedContent"):
        details.append(
            {"type": "reasoning.encrypted", "data": block["redactedContent"], "index": len(details)}
        )


def _reasoning_chunk(delta: dict[str, Any]) -> ChatChunk:
    if "text" in delta:
        return _chunk(Delta(reasoning=delta["text"]))
    if "signature" in delta:
        detail = {"type": "reasoning.text", "text": "", "signature": delta["signature"]}
        return _chunk(Delta(reasoning_details=[detail]))
    detail = {"type": "reasoning.encrypted", "data": delta.get("redactedContent", "")}
    return _chunk(Delta(reasoning_details=[detail]))


def _chunk(delta: Delta) -> ChatChunk:
    return ChatChunk(id="", created=0, model="", choices=[StreamChoice(index=0, delta=delta)])


def normalise_finish(native: str | None) -> str | None:
    if native is None:
        return None
    return FINISH_REASONS.get(native, "error")


def parse_usage(usage: dict[str, Any]) -> Usage:
    """Converse's inputTokens leave out cache reads and writes; ours count every input."""
    cached = int(usage.get("cacheReadInputTokens") or 0)
    written = int(usage.get("cacheWriteInputTokens") or 0)
    prompt = int(usage.get("inputTokens") or 0) + cached + written
    completion = int(usage.get("outputTokens") or 0)
    details = PromptTokensDetails(cached_tokens=cached)
    if written:
        details.cache_write_tokens = written
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=details,
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=0),
    )


class EventStreamParser:
    """AWS event-stream frames in, one envelope per message: ``event`` is the event type,
    or ``exception:<type>`` for an exception message; ``data`` is the JSON payload."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer

        self._buffer = EventStreamBuffer()

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        from botocore.eventstream import ParserError

        self._buffer.add_data(chunk)
        events: list[SSEEvent] = []
        try:
            for message in self._buffer:
                headers = message.headers
                if headers.get(":message-type") == "exception":
                    kind = f"exception:{headers.get(':exception-type', 'unknown')}"
                elif headers.get(":message-type") == "error":
                    kind = f"exception:{headers.get(':error-code', 'unknown')}"
                else:
                    kind = str(headers.get(":event-type", ""))
                events.append(SSEEvent(bytes(message.payload), kind))
        except ParserError as exc:
            raise UpstreamError(
                f"Amazon Bedrock sent a malformed event stream: {exc}", provider="Amazon Bedrock"
            ) from None
        return events

    def flush(self) -> list[SSEEvent]:
        return []
