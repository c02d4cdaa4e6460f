"""Chat Completions request and response types (OpenRouter ``ChatRequest`` / ``ChatResult``).

Fields a client did not send stay ``UNSET`` and are omitted when a request is re-encoded for
an upstream, so what we forward is exactly what was asked for. msgspec always omits UNSET
fields, and emits every other value (``None`` as ``null``), which is how the response types
say "absent" versus "null". Ranges follow the OpenRouter
spec; msgspec reports a violation with its JSON path, which :mod:`switchyard.wire.decode`
turns into an error naming the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

# --- request: content parts ---------------------------------------------------------------


class TextPart(Struct, tag="text", tag_field="type"):
    text: str
    cache_control: dict[str, Any] | UnsetType = UNSET


class ImageUrl(Struct):
    url: str
    detail: Literal["auto", "low", "high", "original"] | UnsetType = UNSET


class ImagePart(Struct, tag="image_url", tag_field="type"):
    image_url: ImageUrl


class AudioPart(Struct, tag="input_audio", tag_field="type"):
    input_audio: dict[str, Any]


class FilePart(Struct, tag="file", tag_field="type"):
    file: dict[str, Any]


class VideoPart(Struct, tag="video_url", tag_field="type"):
    video_url: dict[str, Any]


class LegacyVideoPart(Struct, tag="input_video", tag_field="type"):
    video_url: dict[str, Any]


ContentPart = TextPart | ImagePart | AudioPart | FilePart | VideoPart | LegacyVideoPart

# Which input modality each part needs from the serving model.
PART_MODALITY: dict[type, str] = {
    TextPart: "text",
    ImagePart: "image",
    AudioPart: "audio",
    FilePart: "file",
    VideoPart: "video",
    LegacyVideoPart: "video",
}

# --- request: messages --------------------------------------------------------------------


class FunctionCall(Struct):
    name: str
    arguments: str


class ToolCall(Struct):
    id: str
    function: FunctionCall
    type: Literal["function"] = "function"


class SystemMessage(Struct, tag="system", tag_field="role"):
    content: str | list[TextPart]
    name: str | UnsetType = UNSET


class DeveloperMessage(Struct, tag="developer", tag_field="role"):
    content: str | list[TextPart]
    name: str | UnsetType = UNSET


class UserMessage(Struct, tag="user", tag_field="role"):
    content: str | list[ContentPart]
    name: str | UnsetType = UNSET


class AssistantMessage(Struct, tag="assistant", tag_field="role"):
    content: str | list[ContentPart] | None | UnsetType = UNSET
    name: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET
    refusal: str | None | UnsetType = UNSET
    reasoning: str | None | UnsetType = UNSET
    reasoning_details: list[dict[str, Any]] | UnsetType = UNSET


class ToolMessage(Struct, tag="tool", tag_field="role"):
    content: str | list[ContentPart]
    tool_call_id: str


Message = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage

# `reasoning_details[].format` values (OpenRouter's names): which vendor's signed reasoning a
# detail carries, so it is only ever sent back to that vendor.
REASONING_FORMAT_ANTHROPIC = "anthropic-claude-v1"
REASONING_FORMAT_GEMINI = "google-gemini-v1"


# --- request: tools and formats -----------------------------------------------------------

FunctionName = Annotated[str, Meta(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]


class FunctionDefinition(Struct):
    name: FunctionName
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET
    strict: bool | None | UnsetType = UNSET


class FunctionTool(Struct):
    type: Literal["function"]
    function: FunctionDefinition
    cache_control: dict[str, Any] | UnsetType = UNSET


class NamedFunction(Struct):
    name: str


class NamedToolChoice(Struct):
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class TextFormat(Struct, tag="text", tag_field="type"):
    pass


class JsonObjectFormat(Struct, tag="json_object", tag_field="type"):
    pass


class JsonSchemaConfig(Struct):
    name: Annotated[str, Meta(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | UnsetType = UNSET
    schema: dict[str, Any] | UnsetType = UNSET
    strict: bool | None | UnsetType = UNSET


class JsonSchemaFormat(Struct, tag="json_schema", tag_field="type"):
    json_schema: JsonSchemaConfig


class GrammarFormat(Struct, tag="grammar", tag_field="type"):
    grammar: str


class PythonFormat(Struct, tag="python", tag_field="type"):
    pass


ResponseFormat = TextFormat | JsonObjectFormat | JsonSchemaFormat | GrammarFormat | PythonFormat


class StreamOptions(Struct):
    include_usage: bool | UnsetType = UNSET


class Reasoning(Struct):
    effort: (
        Literal["max", "xhigh", "high", "medium", "low", "minimal", "none"] | None | UnsetType
    ) = UNSET
    summary: str | None | UnsetType = UNSET
    max_tokens: int | None | UnsetType = UNSET
    exclude: bool | None | UnsetType = UNSET
    enabled: bool | None | UnsetType = UNSET


Quantization = Literal[
    "int4",
    "int8",
    "fp4",
    "mxfp4",
    "nvfp4",
    "fp6",
    "fp8",
    "mxfp8",
    "fp16",
    "bf16",
    "fp32",
    "unknown",
]
SortBy = Literal["price", "throughput", "latency", "exacto"]


class SortConfig(Struct):
    by: SortBy | None | UnsetType = UNSET
    partition: Literal["model", "none"] | None | UnsetType = UNSET


class MaxPrice(Struct):
    """USD per million tokens (prompt, completion) or per unit (image, audio, request)."""

    prompt: float | str | UnsetType = UNSET
    completion: float | str | UnsetType = UNSET
    image: float | str | UnsetType = UNSET
    audio: float | str | UnsetType = UNSET
    request: float | str | UnsetType = UNSET


class ProviderPreferences(Struct):
    allow_fallbacks: bool | None | UnsetType = UNSET
    require_parameters: bool | None | UnsetType = UNSET
    data_collection: Literal["deny", "allow"] | None | UnsetType = UNSET
    zdr: bool | None | UnsetType = UNSET
    enforce_distillable_text: bool | None | UnsetType = UNSET
    order: list[str] | None | UnsetType = UNSET
    only: list[str] | None | UnsetType = UNSET
    ignore: list[str] | None | UnsetType = UNSET
    quantizations: list[Quantization] | None | UnsetType = UNSET
    sort: SortBy | SortConfig | None | UnsetType = UNSET
    max_price: MaxPrice | None | UnsetType = UNSET
    preferred_min_throughput: float | dict[str, float] | None | UnsetType = UNSET
    preferred_max_latency: float | dict[str, float] | None | UnsetType = UNSET


# --- request ------------------------------------------------------------------------------

Temperature = Annotated[float, Meta(ge=0, le=2)]
UnitInterval = Annotated[float, Meta(ge=0, le=1)]
Penalty = Annotated[float, Meta(ge=-2, le=2)]
PositiveInt = Annotated[int, Meta(ge=1)]
Bias = Annotated[float, Meta(ge=-100, le=100)]
MetadataKey = Annotated[str, Meta(max_length=64)]
MetadataValue = Annotated[str, Meta(max_length=512)]


class ChatRequest(Struct):
    messages: Annotated[list[Message], Meta(min_length=1)]
    model: str | UnsetType = UNSET
    models: list[str] | UnsetType = UNSET
    stream: bool = False
    stream_options: StreamOptions | None | UnsetType = UNSET
    max_tokens: PositiveInt | None | UnsetType = UNSET
    max_completion_tokens: PositiveInt | None | UnsetType = UNSET
    temperature: Temperature | None | UnsetType = UNSET
    top_p: UnitInterval | None | UnsetType = UNSET
    top_k: Annotated[int, Meta(ge=0)] | None | UnsetType = UNSET
    min_p: UnitInterval | None | UnsetType = UNSET
    top_a: UnitInterval | None | UnsetType = UNSET
    frequency_penalty: Penalty | None | UnsetType = UNSET
    presence_penalty: Penalty | None | UnsetType = UNSET
    repetition_penalty: Annotated[float, Meta(gt=0, le=2)] | None | UnsetType = UNSET
    seed: int | None | UnsetType = UNSET
    stop: str | Annotated[list[str], Meta(max_length=4)] | None | UnsetType = UNSET
    logit_bias: dict[str, Bias] | None | UnsetType = UNSET
    logprobs: bool | None | UnsetType = UNSET
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None | UnsetType = UNSET
    tools: list[FunctionTool] | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    parallel_tool_calls: bool | None | UnsetType = UNSET
    response_format: ResponseFormat | UnsetType = UNSET
    user: str | UnsetType = UNSET
    metadata: Annotated[dict[MetadataKey, MetadataValue], Meta(max_length=16)] | UnsetType = UNSET
    session_id: Annotated[str, Meta(max_length=256)] | UnsetType = UNSET
    provider: ProviderPreferences | None | UnsetType = UNSET
    reasoning: Reasoning | UnsetType = UNSET
    reasoning_effort: (
        Literal["max", "xhigh", "high", "medium", "low", "minimal", "none"] | None | UnsetType
    ) = UNSET
    modalities: list[Literal["text", "image", "audio"]] | UnsetType = UNSET
    service_tier: (
        Literal["auto", "default", "fast", "flex", "priority", "scale"] | None | UnsetType
    ) = UNSET
    prediction: dict[str, Any] | UnsetType = UNSET
    prompt_cache_key: str | None | UnsetType = UNSET
    web_search_options: dict[str, Any] | UnsetType = UNSET
    verbosity: Literal["low", "medium", "high"] | None | UnsetType = UNSET
    # OpenRouter-only switches: validated for shape, not (yet) acted on.
    plugins: list[dict[str, Any]] | UnsetType = UNSET
    route: Literal["fallback", "sort"] | None | UnsetType = UNSET
    transforms: list[str] | UnsetType = UNSET
    debug: dict[str, Any] | UnsetType = UNSET
    trace: dict[str, Any] | UnsetType = UNSET
    cache_control: dict[str, Any] | UnsetType = UNSET
    image_config: dict[str, Any] | UnsetType = UNSET
    prompt_cache_options: dict[str, Any] | UnsetType = UNSET

    def output_limit(self) -> int | None:
        """The requested cap on generated tokens, whichever spelling the client used."""
        for value in (self.max_completion_tokens, self.max_tokens):
            if isinstance(value, int):
                return value
        return None


# --- response -----------------------------------------------------------------------------

# Normalised values are stop, length, tool_calls, content_filter and error; the type stays a
# plain string so upstream bodies decode straight into these structs before normalising.
FinishReason = str


class PromptTokensDetails(Struct):
    cached_tokens: int = 0
    cache_write_tokens: int | UnsetType = UNSET
    audio_tokens: int | UnsetType = UNSET
    video_tokens: int | UnsetType = UNSET


class CompletionTokensDetails(Struct):
    reasoning_tokens: int = 0
    image_tokens: int | UnsetType = UNSET
    audio_tokens: int | UnsetType = UNSET
    accepted_prediction_tokens: int | UnsetType = UNSET
    rejected_prediction_tokens: int | UnsetType = UNSET


class CostDetails(Struct):
    upstream_inference_cost: Decimal | None = None
    upstream_inference_prompt_cost: Decimal = Decimal(0)
    upstream_inference_completions_cost: Decimal = Decimal(0)


class Usage(Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None | UnsetType = UNSET
    completion_tokens_details: CompletionTokensDetails | None | UnsetType = UNSET
    cost: Decimal | UnsetType = UNSET  # encoded as a JSON number (see wire.codec)
    is_byok: bool | UnsetType = UNSET
    cost_details: CostDetails | None | UnsetType = UNSET


class ResponseMessage(Struct):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None | UnsetType = UNSET
    reasoning: str | None | UnsetType = UNSET
    reasoning_details: list[dict[str, Any]] | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET
    annotations: list[dict[str, Any]] | UnsetType = UNSET


class Choice(Struct):
    index: int
    message: ResponseMessage
    finish_reason: FinishReason | None = None
    native_finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None


class ChatResult(Struct):
    id: str
    created: int
    model: str
    choices: list[Choice]
    object: Literal["chat.completion"] = "chat.completion"
    provider: str | UnsetType = UNSET
    system_fingerprint: str | None = None
    service_tier: str | None | UnsetType = UNSET
    usage: Usage | None | UnsetType = UNSET
    openrouter_metadata: dict[str, Any] | UnsetType = UNSET


# --- streaming ----------------------------------------------------------------------------


class FunctionCallDelta(Struct):
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET


class ToolCallDelta(Struct):
    index: int
    id: str | UnsetType = UNSET
    type: Literal["function"] | UnsetType = UNSET
    function: FunctionCallDelta | UnsetType = UNSET


class Delta(Struct):
    role: Literal["assistant"] | UnsetType = UNSET
    content: str | None | UnsetType = UNSET
    refusal: str | None | UnsetType = UNSET
    reasoning: str | None | UnsetType = UNSET
    reasoning_details: list[dict[str, Any]] | UnsetType = UNSET
    tool_calls: list[ToolCallDelta] | UnsetType = UNSET


class StreamChoice(Struct):
    index: int
    delta: Delta
    finish_reason: FinishReason | None = None
    native_finish_reason: str | None = None
    logprobs: dict[str, Any] | None | UnsetType = UNSET


class StreamError(Struct):
    code: int
    message: str
    metadata: dict[str, Any] | UnsetType = UNSET


class ChatChunk(Struct):
    id: str
    created: int
    model: str
    choices: list[StreamChoice]
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    provider: str | UnsetType = UNSET
    system_fingerprint: str | None | UnsetType = UNSET
    service_tier: str | None | UnsetType = UNSET
    usage: Usage | None | UnsetType = UNSET
    error: StreamError | UnsetType = UNSET
    openrouter_metadata: dict[str, Any] | UnsetType = UNSET
