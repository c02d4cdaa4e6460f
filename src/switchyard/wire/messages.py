"""Anthropic Messages request, response and stream event types (OpenRouter ``/messages``).

Requests follow OpenRouter's ``MessagesRequest`` schema: Anthropic's fields plus the
router's own (``models``, ``fallbacks``, ``provider``, ``session_id``, ...). Content blocks
are tagged unions on ``type``, so an unsupported block or tool type is refused while
decoding with the JSON path of its ``type`` (see :mod:`switchyard.wire.codec`). Fields a
client did not send stay ``UNSET``.

Responses and stream events are what the official ``anthropic`` SDK parses; fields the
schema marks required but we have no value for (``container``, ``cache_creation``, ...) are
emitted as ``null`` rather than left out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from switchyard.wire.chat import (
    FunctionName,
    PositiveInt,
    ProviderPreferences,
    Temperature,
    UnitInterval,
)

CacheControl = dict[str, Any]

# --- request: content blocks --------------------------------------------------------------


class TextBlockParam(Struct, tag="text", tag_field="type"):
    text: str
    cache_control: CacheControl | None | UnsetType = UNSET
    citations: list[dict[str, Any]] | None | UnsetType = UNSET


class Base64ImageSource(Struct, tag="base64", tag_field="type"):
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str


class UrlImageSource(Struct, tag="url", tag_field="type"):
    url: str


class ImageBlockParam(Struct, tag="image", tag_field="type"):
    source: Base64ImageSource | UrlImageSource
    cache_control: CacheControl | None | UnsetType = UNSET


class Base64PdfSource(Struct, tag="base64", tag_field="type"):
    media_type: Literal["application/pdf"]
    data: str


class PlainTextSource(Struct, tag="text", tag_field="type"):
    media_type: Literal["text/plain"]
    data: str


class UrlPdfSource(Struct, tag="url", tag_field="type"):
    url: str


class DocumentBlockParam(Struct, tag="document", tag_field="type"):
    source: Base64PdfSource | PlainTextSource | UrlPdfSource
    title: str | None | UnsetType = UNSET
    context: str | None | UnsetType = UNSET
    cache_control: CacheControl | None | UnsetType = UNSET
    citations: dict[str, Any] | None | UnsetType = UNSET


class ToolUseBlockParam(Struct, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: Any = None
    cache_control: CacheControl | None | UnsetType = UNSET


class ToolResultBlockParam(Struct, tag="tool_result", tag_field="type"):
    tool_use_id: str
    content: str | list[TextBlockParam | ImageBlockParam] | UnsetType = UNSET
    is_error: bool | UnsetType = UNSET
    cache_control: CacheControl | None | UnsetType = UNSET


class ThinkingBlockParam(Struct, tag="thinking", tag_field="type"):
    thinking: str
    signature: str


class RedactedThinkingBlockParam(Struct, tag="redacted_thinking", tag_field="type"):
    data: str


ContentBlockParam = (
    TextBlockParam
    | ImageBlockParam
    | DocumentBlockParam
    | ToolUseBlockParam
    | ToolResultBlockParam
    | ThinkingBlockParam
    | RedactedThinkingBlockParam
)


class MessageParam(Struct):
    # "system" inside messages is an OpenRouter extension.
    role: Literal["user", "assistant", "system"]
    content: str | list[ContentBlockParam]


# --- request: tools, tool choice, thinking ------------------------------------------------


class ToolParam(Struct):
    """A client tool. Anthropic-hosted tools (bash, web search, ...) are not supported."""

    name: FunctionName
    input_schema: dict[str, Any]
    description: str | UnsetType = UNSET
    type: Literal["custom"] | UnsetType = UNSET
    cache_control: CacheControl | None | UnsetType = UNSET


class ToolChoiceAuto(Struct, tag="auto", tag_field="type"):
    disable_parallel_tool_use: bool | UnsetType = UNSET


class ToolChoiceAny(Struct, tag="any", tag_field="type"):
    disable_parallel_tool_use: bool | UnsetType = UNSET


class ToolChoiceTool(Struct, tag="tool", tag_field="type"):
    name: str
    disable_parallel_tool_use: bool | UnsetType = UNSET


class ToolChoiceNone(Struct, tag="none", tag_field="type"):
    pass


ToolChoiceParam = ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone

ThinkingDisplay = Literal["summarized", "omitted"] | None


class ThinkingEnabled(Struct, tag="enabled", tag_field="type"):
    budget_tokens: PositiveInt
    display: ThinkingDisplay | UnsetType = UNSET


class ThinkingDisabled(Struct, tag="disabled", tag_field="type"):
    pass


class ThinkingAdaptive(Struct, tag="adaptive", tag_field="type"):
    display: ThinkingDisplay | UnsetType = UNSET


ThinkingParam = ThinkingEnabled | ThinkingDisabled | ThinkingAdaptive


class RequestMetadata(Struct):
    user_id: str | None | UnsetType = UNSET


class OutputFormat(Struct):
    type: Literal["json_schema"]
    schema: dict[str, Any]


class OutputConfig(Struct):
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None | UnsetType = UNSET
    format: OutputFormat | None | UnsetType = UNSET


class FallbackParam(Struct):
    model: str


# --- request ------------------------------------------------------------------------------


class MessagesRequest(Struct):
    model: str
    messages: Annotated[list[MessageParam], Meta(min_length=1)]
    # Anthropic requires max_tokens; OpenRouter's /messages schema does not, and we follow it.
    max_tokens: PositiveInt | UnsetType = UNSET
    system: str | list[TextBlockParam] | UnsetType = UNSET
    stop_sequences: list[str] | UnsetType = UNSET
    stream: bool = False
    temperature: Temperature | UnsetType = UNSET
    top_p: UnitInterval | UnsetType = UNSET
    top_k: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    tools: list[ToolParam] | UnsetType = UNSET
    tool_choice: ToolChoiceParam | UnsetType = UNSET
    thinking: ThinkingParam | UnsetType = UNSET
    metadata: RequestMetadata | UnsetType = UNSET
    output_config: OutputConfig | UnsetType = UNSET
    service_tier: str | UnsetType = UNSET
    cache_control: CacheControl | None | UnsetType = UNSET
    # OpenRouter extensions.
    models: list[str] | UnsetType = UNSET
    fallbacks: Annotated[list[FallbackParam], Meta(max_length=3)] | None | UnsetType = UNSET
    provider: ProviderPreferences | None | UnsetType = UNSET
    session_id: Annotated[str, Meta(max_length=256)] | UnsetType = UNSET
    user: Annotated[str, Meta(max_length=256)] | UnsetType = UNSET
    plugins: list[dict[str, Any]] | UnsetType = UNSET
    route: Literal["fallback", "sort"] | None | UnsetType = UNSET
    trace: dict[str, Any] | UnsetType = UNSET


# --- response -----------------------------------------------------------------------------

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"]


class DirectCaller(Struct, frozen=True, tag="direct", tag_field="type"):
    pass


class TextBlock(Struct, tag="text", tag_field="type"):
    text: str
    citations: list[dict[str, Any]] | None = None


class ToolUseBlock(Struct, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: dict[str, Any]
    caller: DirectCaller = DirectCaller()


class ThinkingBlock(Struct, tag="thinking", tag_field="type"):
    thinking: str
    signature: str


class RedactedThinkingBlock(Struct, tag="redacted_thinking", tag_field="type"):
    data: str


ContentBlock = TextBlock | ToolUseBlock | ThinkingBlock | RedactedThinkingBlock


class OutputTokensDetails(Struct):
    thinking_tokens: int


class CostDetails(Struct):
    upstream_inference_cost: Decimal | None = None
    upstream_inference_prompt_cost: Decimal = Decimal(0)
    upstream_inference_completions_cost: Decimal = Decimal(0)


class MessagesUsage(Struct):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: dict[str, Any] | None = None
    output_tokens_details: OutputTokensDetails | None = None
    server_tool_use: dict[str, Any] | None = None
    inference_geo: str | None = None
    service_tier: str | None = None
    # OpenRouter extensions: what the generation cost, priced from the catalog.
    cost: Decimal | UnsetType = UNSET
    is_byok: bool | UnsetType = UNSET
    cost_details: CostDetails | None | UnsetType = UNSET


class MessagesResult(Struct, tag="message", tag_field="type"):
    id: str
    model: str
    content: list[ContentBlock]
    usage: MessagesUsage
    role: Literal["assistant"] = "assistant"
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    stop_details: dict[str, Any] | None = None
    container: dict[str, Any] | None = None
    provider: str | UnsetType = UNSET
    openrouter_metadata: dict[str, Any] | UnsetType = UNSET


# --- stream events ------------------------------------------------------------------------


class MessageStartEvent(Struct, tag="message_start", tag_field="type"):
    message: MessagesResult


class ContentBlockStartEvent(Struct, tag="content_block_start", tag_field="type"):
    index: int
    content_block: ContentBlock


class TextDelta(Struct, tag="text_delta", tag_field="type"):
    text: str


class InputJsonDelta(Struct, tag="input_json_delta", tag_field="type"):
    partial_json: str


class ThinkingDelta(Struct, tag="thinking_delta", tag_field="type"):
    thinking: str


class SignatureDelta(Struct, tag="signature_delta", tag_field="type"):
    signature: str


BlockDelta = TextDelta | InputJsonDelta | ThinkingDelta | SignatureDelta


class ContentBlockDeltaEvent(Struct, tag="content_block_delta", tag_field="type"):
    index: int
    delta: BlockDelta


class ContentBlockStopEvent(Struct, tag="content_block_stop", tag_field="type"):
    index: int


class MessageDelta(Struct):
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    stop_details: dict[str, Any] | None = None
    container: dict[str, Any] | None = None


class MessageDeltaEvent(Struct, tag="message_delta", tag_field="type"):
    delta: MessageDelta
    usage: MessagesUsage


class MessageStopEvent(Struct, tag="message_stop", tag_field="type"):
    openrouter_metadata: dict[str, Any] | UnsetType = UNSET


class PingEvent(Struct, tag="ping", tag_field="type"):
    pass


class ErrorDetail(Struct):
    type: str
    message: str
    error_type: str | UnsetType = UNSET


class ErrorEvent(Struct, tag="error", tag_field="type"):
    error: ErrorDetail


StreamEvent = (
    MessageStartEvent
    | ContentBlockStartEvent
    | ContentBlockDeltaEvent
    | ContentBlockStopEvent
    | MessageDeltaEvent
    | MessageStopEvent
    | PingEvent
    | ErrorEvent
)


class ErrorResponse(Struct, tag="error", tag_field="type"):
    """The body of a failed ``/messages`` call (``AnthropicMessagesErrorResponse``)."""

    error: ErrorDetail
    request_id: str | None = None
    metadata: dict[str, Any] | UnsetType = UNSET
