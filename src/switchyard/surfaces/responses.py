"""Responses objects from chat results: a chat completion as a finished Response, and the
pieces (ids, usage, status, reasoning item, logprobs) that the event stream in
:mod:`switchyard.surfaces.responses_stream` builds from too.

Pure translation, no I/O: the handler in :mod:`switchyard.server.responses_api` writes what
this module returns; the request side is :mod:`switchyard.surfaces.responses_request`.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from switchyard.surfaces.responses_request import Translation
from switchyard.wire.chat import ChatResult, ResponseMessage, Usage
from switchyard.wire.responses import (
    FunctionCallItem,
    IncompleteDetails,
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
    ResponseStatus,
    ResponseUsage,
    SummaryTextPart,
)


def response_id(generation_id: str) -> str:
    """The response id for a generation: ``gen-X`` is answered as ``resp_X``."""
    return "resp_" + generation_id.removeprefix("gen-")


def item_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


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
