"""Responses API types: the request (OpenRouter ``ResponsesRequest``), the response object
(``OpenResponsesResult``) and the stream events, as the openai SDK's
``openai.types.responses`` reads them.

The Responses API is served statelessly: nothing is stored, so fields that refer to stored
state (``previous_response_id``, ``conversation``, ``prompt``, ``item_reference`` items) are
decoded only to be refused by name. As in :mod:`switchyard.wire.chat`, ``UNSET`` means the
client did not send a field; response structs always emit their fields (``None`` as
``null``), because the openai SDK and the spec list most of them as required.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType, field

from switchyard.wire.chat import (
    MetadataKey,
    MetadataValue,
    Penalty,
    PositiveInt,
    ProviderPreferences,
    Reasoning,
    Temperature,
    UnitInterval,
)

# --- request: content parts ---------------------------------------------------------------


class InputTextPart(Struct, tag="input_text", tag_field="type"):
    text: str


class InputImagePart(Struct, tag="input_image", tag_field="type"):
    image_url: str | None | UnsetType = UNSET  # an http(s) URL or a data: URL
    file_id: str | None | UnsetType = UNSET  # refers to an uploaded file: refused
    detail: Literal["auto", "low", "high", "original"] | UnsetType = UNSET


class InputFilePart(Struct, tag="input_file", tag_field="type"):
    file_data: str | UnsetType = UNSET
    file_url: str | UnsetType = UNSET
    file_id: str | None | UnsetType = UNSET  # refers to an uploaded file: refused
    filename: str | UnsetType = UNSET


class InputAudioData(Struct):
    data: str
    format: Literal["mp3", "wav"]


class InputAudioPart(Struct, tag="input_audio", tag_field="type"):
    input_audio: InputAudioData


class OutputTextPart(Struct, tag="output_text", tag_field="type"):
    """Assistant text, in an input item (a previous turn) and in an output message."""

    text: str
    annotations: list[dict[str, Any]] = field(default_factory=list)
    logprobs: list[dict[str, Any]] | None | UnsetType = UNSET


class RefusalPart(Struct, tag="refusal", tag_field="type"):
    refusal: str


class ReasoningTextPart(Struct, tag="reasoning_text", tag_field="type"):
    text: str


class SummaryTextPart(Struct, tag="summary_text", tag_field="type"):
    text: str


InputContent = (
    InputTextPart
    | InputImagePart
    | InputFilePart
    | InputAudioPart
    | OutputTextPart
    | RefusalPart
    | ReasoningTextPart
)

# --- request: input items -----------------------------------------------------------------

InputItemType = Literal[
    "message", "function_call", "function_call_output", "reasoning", "item_reference"
]


class InputItem(Struct):
    """One item of ``input``: a message, a function call, a call's output, or reasoning.

    One flat struct rather than a tagged union because a message may leave out ``type``
    (the SDK's ``EasyInputMessage``), which msgspec's tagged unions cannot express. Which
    fields each type requires is checked, by name, in :mod:`switchyard.surfaces.responses_input`.
    Fields of items the client echoes back from an earlier output (``id``, ``status``,
    ``phase``, ...) are accepted and ignored.
    """

    type: InputItemType = "message"
    role: Literal["user", "assistant", "system", "developer"] | UnsetType = UNSET
    content: str | list[InputContent] | None | UnsetType = UNSET
    id: str | None | UnsetType = UNSET
    call_id: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET
    output: str | list[InputContent] | UnsetType = UNSET
    summary: list[SummaryTextPart] | None | UnsetType = UNSET
    encrypted_content: str | None | UnsetType = UNSET
    signature: str | None | UnsetType = UNSET  # OpenRouter: signed reasoning text
    format: str | None | UnsetType = UNSET  # OpenRouter: whose reasoning it is


# --- request: tools and text format -------------------------------------------------------


class ResponsesTool(Struct):
    """A tool as the Responses API spells it: flat, ``{type, name, parameters, ...}``.

    ``type`` is any string here so that a hosted tool (web_search, file_search, mcp, ...) is
    refused with a message naming ``tools[i].type`` instead of a union mismatch.
    """

    type: str
    name: str | UnsetType = UNSET
    description: str | None | UnsetType = UNSET
    parameters: dict[str, Any] | None | UnsetType = UNSET
    strict: bool | None | UnsetType = UNSET


class ToolChoiceObject(Struct):
    """``{type: function, name}``, or ``{type: allowed_tools, mode, tools}``."""

    type: str
    name: str | UnsetType = UNSET
    mode: Literal["auto", "required"] | UnsetType = UNSET
    tools: list[dict[str, Any]] | UnsetType = UNSET


ResponsesToolChoice = Literal["none", "auto", "required"] | ToolChoiceObject

SchemaName = Annotated[str, Meta(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]


class FormatText(Struct, tag="text", tag_field="type"):
    pass


class FormatJsonObject(Struct, tag="json_object", tag_field="type"):
    pass


class FormatJsonSchema(Struct, tag="json_schema", tag_field="type"):
    name: SchemaName
    schema: dict[str, Any]
    description: str | UnsetType = UNSET
    strict: bool | None | UnsetType = UNSET


TextFormat = FormatText | FormatJsonObject | FormatJsonSchema


class TextConfig(Struct):
    format: TextFormat | UnsetType = UNSET
    verbosity: Literal["low", "medium", "high", "xhigh", "max"] | None | UnsetType = UNSET


# --- request ------------------------------------------------------------------------------


class ResponsesRequest(Struct):
    input: str | list[InputItem]
    model: str | UnsetType = UNSET
    models: list[str] | UnsetType = UNSET
    instructions: str | None | UnsetType = UNSET
    stream: bool = False
    max_output_tokens: PositiveInt | None | UnsetType = UNSET
    temperature: Temperature | None | UnsetType = UNSET
    top_p: UnitInterval | None | UnsetType = UNSET
    top_k: Annotated[int, Meta(ge=0)] | None | UnsetType = UNSET
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None | UnsetType = UNSET
    frequency_penalty: Penalty | None | UnsetType = UNSET
    presence_penalty: Penalty | None | UnsetType = UNSET
    tools: list[ResponsesTool] | None | UnsetType = UNSET
    tool_choice: ResponsesToolChoice | None | UnsetType = UNSET
    parallel_tool_calls: bool | None | UnsetType = UNSET
    text: TextConfig | None | UnsetType = UNSET
    reasoning: Reasoning | None | UnsetType = UNSET
    metadata: (
        Annotated[dict[MetadataKey, MetadataValue], Meta(max_length=16)] | None | UnsetType
    ) = UNSET
    user: Annotated[str, Meta(max_length=256)] | UnsetType = UNSET
    safety_identifier: str | None | UnsetType = UNSET
    session_id: Annotated[str, Meta(max_length=256)] | UnsetType = UNSET
    service_tier: (
        Literal["auto", "default", "fast", "flex", "priority", "scale"] | None | UnsetType
    ) = UNSET
    prompt_cache_key: str | None | UnsetType = UNSET
    include: list[str] | None | UnsetType = UNSET
    truncation: Literal["auto", "disabled"] | None | UnsetType = UNSET
    max_tool_calls: int | None | UnsetType = UNSET
    modalities: list[Literal["text", "image"]] | UnsetType = UNSET
    # Accepted, but nothing is ever stored; the response says ``store: false``.
    store: bool | None | UnsetType = UNSET
    # Need stored state: any value but null/false is refused, naming the field.
    previous_response_id: str | None | UnsetType = UNSET
    conversation: str | dict[str, Any] | None | UnsetType = UNSET
    prompt: dict[str, Any] | None | UnsetType = UNSET
    background: bool | None | UnsetType = UNSET
    # OpenRouter extensions, passed on to the chat service as they are.
    provider: ProviderPreferences | None | UnsetType = UNSET
    plugins: list[dict[str, Any]] | UnsetType = UNSET
    route: Literal["fallback", "sort"] | None | UnsetType = UNSET
    debug: dict[str, Any] | UnsetType = UNSET
    trace: dict[str, Any] | UnsetType = UNSET
    cache_control: dict[str, Any] | UnsetType = UNSET
    image_config: dict[str, Any] | UnsetType = UNSET
    prompt_cache_options: dict[str, Any] | UnsetType = UNSET


# --- response: output items ---------------------------------------------------------------

ItemStatus = Literal["in_progress", "completed", "incomplete"]


class MessageItem(Struct, tag="message", tag_field="type"):
    id: str
    status: ItemStatus
    content: list[OutputTextPart | RefusalPart]
    role: Literal["assistant"] = "assistant"


class ReasoningItem(Struct, tag="reasoning", tag_field="type"):
    id: str
    summary: list[SummaryTextPart]
    status: ItemStatus
    content: list[ReasoningTextPart] | UnsetType = UNSET
    encrypted_content: str | None = None
    # OpenRouter extensions, so that signed reasoning (Anthropic's) survives a round trip.
    signature: str | UnsetType = UNSET
    format: str | UnsetType = UNSET


class FunctionCallItem(Struct, tag="function_call", tag_field="type"):
    id: str
    call_id: str
    name: str
    arguments: str
    status: ItemStatus


OutputItem = MessageItem | ReasoningItem | FunctionCallItem

# --- response -----------------------------------------------------------------------------


class InputTokensDetails(Struct):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(Struct):
    reasoning_tokens: int = 0


class ResponseCostDetails(Struct):
    upstream_inference_input_cost: Decimal
    upstream_inference_output_cost: Decimal
    upstream_inference_cost: Decimal | None = None


class ResponseUsage(Struct):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int
    cost: Decimal | UnsetType = UNSET  # encoded as a JSON number (see wire.codec)
    is_byok: bool | UnsetType = UNSET
    cost_details: ResponseCostDetails | UnsetType = UNSET


class IncompleteDetails(Struct):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseError(Struct):
    code: str  # one of the spec's ResponsesErrorField codes
    message: str


ResponseStatus = Literal["completed", "incomplete", "in_progress", "failed"]


class Response(Struct):
    """The response object; request parameters are echoed back, as OpenAI does."""

    id: str
    created_at: int
    model: str
    status: ResponseStatus
    output: list[OutputItem]
    object: Literal["response"] = "response"
    completed_at: int | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_logprobs: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    tools: list[ResponsesTool] = field(default_factory=list)
    tool_choice: ResponsesToolChoice = "auto"
    parallel_tool_calls: bool = True
    text: TextConfig = field(default_factory=lambda: TextConfig(format=FormatText()))
    reasoning: Reasoning | None = None
    store: bool = False
    background: bool = False
    previous_response_id: None = None
    truncation: Literal["auto", "disabled"] = "disabled"
    service_tier: str | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    usage: ResponseUsage | None = None
    openrouter_metadata: dict[str, Any] | UnsetType = UNSET


# --- stream events ------------------------------------------------------------------------
# sequence_number is set as each event is emitted, so it comes last with a placeholder.


class ResponseCreated(Struct, tag="response.created", tag_field="type"):
    response: Response
    sequence_number: int = 0


class ResponseInProgress(Struct, tag="response.in_progress", tag_field="type"):
    response: Response
    sequence_number: int = 0


class ResponseCompleted(Struct, tag="response.completed", tag_field="type"):
    response: Response
    sequence_number: int = 0


class ResponseIncomplete(Struct, tag="response.incomplete", tag_field="type"):
    response: Response
    sequence_number: int = 0


class ResponseFailed(Struct, tag="response.failed", tag_field="type"):
    response: Response
    sequence_number: int = 0


class OutputItemAdded(Struct, tag="response.output_item.added", tag_field="type"):
    output_index: int
    item: OutputItem
    sequence_number: int = 0


class OutputItemDone(Struct, tag="response.output_item.done", tag_field="type"):
    output_index: int
    item: OutputItem
    sequence_number: int = 0


class ContentPartAdded(Struct, tag="response.content_part.added", tag_field="type"):
    item_id: str
    output_index: int
    content_index: int
    part: OutputTextPart | RefusalPart
    sequence_number: int = 0


class ContentPartDone(Struct, tag="response.content_part.done", tag_field="type"):
    item_id: str
    output_index: int
    content_index: int
    part: OutputTextPart | RefusalPart
    sequence_number: int = 0


class OutputTextDelta(Struct, tag="response.output_text.delta", tag_field="type"):
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    sequence_number: int = 0


class OutputTextDone(Struct, tag="response.output_text.done", tag_field="type"):
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    sequence_number: int = 0


class RefusalDelta(Struct, tag="response.refusal.delta", tag_field="type"):
    item_id: str
    output_index: int
    content_index: int
    delta: str
    sequence_number: int = 0


class RefusalDone(Struct, tag="response.refusal.done", tag_field="type"):
    item_id: str
    output_index: int
    content_index: int
    refusal: str
    sequence_number: int = 0


class FunctionCallArgumentsDelta(
    Struct, tag="response.function_call_arguments.delta", tag_field="type"
):
    item_id: str
    output_index: int
    delta: str
    sequence_number: int = 0


class FunctionCallArgumentsDone(
    Struct, tag="response.function_call_arguments.done", tag_field="type"
):
    item_id: str
    output_index: int
    name: str
    arguments: str
    sequence_number: int = 0


class ReasoningSummaryPartAdded(
    Struct, tag="response.reasoning_summary_part.added", tag_field="type"
):
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryTextPart
    sequence_number: int = 0


class ReasoningSummaryPartDone(
    Struct, tag="response.reasoning_summary_part.done", tag_field="type"
):
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryTextPart
    sequence_number: int = 0


class ReasoningSummaryTextDelta(
    Struct, tag="response.reasoning_summary_text.delta", tag_field="type"
):
    item_id: str
    output_index: int
    summary_index: int
    delta: str
    sequence_number: int = 0


class ReasoningSummaryTextDone(
    Struct, tag="response.reasoning_summary_text.done", tag_field="type"
):
    item_id: str
    output_index: int
    summary_index: int
    text: str
    sequence_number: int = 0


ResponseEvent = (
    ResponseCreated
    | ResponseInProgress
    | ResponseCompleted
    | ResponseIncomplete
    | ResponseFailed
    | OutputItemAdded
    | OutputItemDone
    | ContentPartAdded
    | ContentPartDone
    | OutputTextDelta
    | OutputTextDone
    | RefusalDelta
    | RefusalDone
    | FunctionCallArgumentsDelta
    | FunctionCallArgumentsDone
    | ReasoningSummaryPartAdded
    | ReasoningSummaryPartDone
    | ReasoningSummaryTextDelta
    | ReasoningSummaryTextDone
)
