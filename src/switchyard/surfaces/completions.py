"""The legacy Completions API as a surface over the chat service.

A completion request becomes a chat request with one user message holding the prompt, so
planning, fallbacks, metering and accounting are exactly those of ``/chat/completions``; the
result and the stream's chunks are rewritten into ``text_completion`` objects on the way
out. For a chat model the prompt then goes through its chat template, as on OpenRouter.
Whether a model has no template (a base model, fed the text as written) is catalog data the
serving provider acts on, never something this module decides.

What the chat service cannot express is refused with a 400 naming the field: several
prompts or token-id prompts in one request, ``n`` / ``best_of`` above 1, ``suffix`` (no
served model does fill-in-the-middle) and ``echo`` with ``logprobs`` (that asks for the
prompt's log probabilities, which no chat upstream returns). ``echo`` alone is done here:
the prompt is prepended to the text.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from msgspec import UNSET

from switchyard.completions import StreamSession
from switchyard.errors import InvalidRequest
from switchyard.sse import DONE_FRAME, KEEPALIVE_FRAME, frame
from switchyard.wire.chat import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    StreamChoice,
    Usage,
    UserMessage,
)
from switchyard.wire.codec import encode
from switchyard.wire.completions import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResult,
)

# OpenAI's legacy API generates 16 tokens when max_tokens is absent; clients written for it
# rely on that, and an unbounded default would be slow and costly on a base model.
DEFAULT_MAX_TOKENS = 16


# --- request ------------------------------------------------------------------------------


def prompt_text(request: CompletionRequest) -> str:
    """The one prompt, as text."""
    prompt = request.prompt
    if isinstance(prompt, str):
        return prompt
    if not prompt:
        raise InvalidRequest("`prompt` must not be an empty list", field="prompt")
    for i, item in enumerate(prompt):
        if isinstance(item, int | list):
            raise InvalidRequest(
                "`prompt` as token ids is not supported; send the prompt as text",
                field=f"prompt[{i}]",
            )
        if not isinstance(item, str):
            raise InvalidRequest(
                f"Invalid value for `prompt[{i}]`: expected a string", field=f"prompt[{i}]"
            )
    if len(prompt) > 1:
        raise InvalidRequest(
            f"`prompt` holds {len(prompt)} prompts; send one prompt per request",
            field="prompt",
        )
    text: str = prompt[0]
    return text


def _refuse_unsupported(request: CompletionRequest) -> None:
    if isinstance(request.suffix, str) and request.suffix:
        raise InvalidRequest(
            "`suffix` (fill-in-the-middle) is not supported by any model served here",
            field="suffix",
        )
    for name in ("n", "best_of"):
        value = getattr(request, name)
        if isinstance(value, int) and value > 1:
            raise InvalidRequest(f"`{name}` must be 1: send one request per completion", field=name)
    if request.echo is True and isinstance(request.logprobs, int):
        raise InvalidRequest(
            "`echo` with `logprobs` asks for the prompt's log probabilities, which are not"
            " available; drop one of them",
            field="echo",
        )


def to_chat(request: CompletionRequest) -> ChatRequest:
    """The chat request that serves this completion request."""
    text = prompt_text(request)
    _refuse_unsupported(request)
    logprobs = request.logprobs
    return ChatRequest(
        messages=[UserMessage(content=text)],
        model=request.model,
        models=request.models,
        provider=request.provider,
        stream=request.stream,
        stream_options=request.stream_options,
        max_tokens=request.max_tokens
        if isinstance(request.max_tokens, int)
        else DEFAULT_MAX_TOKENS,
        temperature=request.temperature,
        top_p=request.top_p,
        top_k=request.top_k,
        min_p=request.min_p,
        top_a=request.top_a,
        frequency_penalty=request.frequency_penalty,
        presence_penalty=request.presence_penalty,
        repetition_penalty=request.repetition_penalty,
        seed=request.seed,
        stop=request.stop,
        logit_bias=request.logit_bias,
        logprobs=True if isinstance(logprobs, int) else UNSET,
        top_logprobs=logprobs if isinstance(logprobs, int) else UNSET,
        user=request.user,
        metadata=request.metadata,
        session_id=request.session_id,
        route=request.route,
        transforms=request.transforms,
    )


def echo_prefix(request: CompletionRequest) -> str:
    return prompt_text(request) if request.echo is True else ""


# --- logprobs -----------------------------------------------------------------------------


def legacy_logprobs(logprobs: Any, offset: int) -> tuple[CompletionLogprobs | None, int]:
    """Chat logprobs (``{"content": [...]}``) in the legacy shape, offsets from ``offset``.

    Returns the converted logprobs and the offset just past their last token, for the next
    chunk of a stream. Each ``top_logprobs`` entry includes the chosen token, as OpenAI's do.
    """
    entries = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not entries:
        return None, offset
    out = CompletionLogprobs(tokens=[], token_logprobs=[], top_logprobs=[], text_offset=[])
    assert out.top_logprobs is not None
    for entry in entries:
        token = str(entry.get("token", ""))
        logprob = entry.get("logprob")
        top = {str(t.get("token", "")): t.get("logprob") for t in entry.get("top_logprobs") or ()}
        if logprob is not None:
            top.setdefault(token, logprob)
        out.tokens.append(token)
        out.token_logprobs.append(logprob)
        out.top_logprobs.append(top)
        out.text_offset.append(offset)
        offset += len(token)
    return out, offset


# --- response -----------------------------------------------------------------------------


def to_completion(result: ChatResult, echo: str = "") -> CompletionResult:
    choices = []
    for choice in result.choices:
        logprobs, _ = legacy_logprobs(choice.logprobs, len(echo))
        choices.append(
            CompletionChoice(
                index=choice.index,
                text=echo + (choice.message.content or ""),
                finish_reason=choice.finish_reason,
                native_finish_reason=choice.native_finish_reason,
                logprobs=logprobs,
            )
        )
    return CompletionResult(
        id=result.id,
        created=result.created,
        model=result.model,
        choices=choices,
        provider=result.provider,
        system_fingerprint=result.system_fingerprint,
        usage=result.usage,
        openrouter_metadata=result.openrouter_metadata,
    )


class ChunkTranslator:
    """Chat stream chunks in, ``text_completion`` chunks out, for one stream."""

    def __init__(self, echo: str = "") -> None:
        self._echo = echo
        self._offsets: dict[int, int] = {}

    def translate(self, chunk: ChatChunk) -> list[CompletionResult]:
        if chunk.error is not UNSET:
            return [
                self._result(
                    chunk,
                    [CompletionChoice(index=0, text="", finish_reason="error")],
                    error=chunk.error,
                )
            ]
        out: list[CompletionResult] = []
        choices = [c for choice in chunk.choices if (c := self._choice(choice)) is not None]
        if choices:
            out.append(self._result(chunk, choices))
        if isinstance(chunk.usage, Usage):
            if self._echo:  # the model said nothing: the echoed prompt still comes first
                out.append(self._result(chunk, [self._choice_text(0, "", None)]))
            out.append(self._result(chunk, [], usage=chunk.usage))
        return out

    def _choice(self, choice: StreamChoice) -> CompletionChoice | None:
        text = choice.delta.content if isinstance(choice.delta.content, str) else ""
        has_logprobs = isinstance(choice.logprobs, dict) and choice.logprobs.get("content")
        if not text and choice.finish_reason is None and not has_logprobs and not self._echo:
            return None  # a role-only or reasoning-only delta: nothing for this API
        result = self._choice_text(choice.index, text, choice.logprobs)
        result.finish_reason = choice.finish_reason
        result.native_finish_reason = choice.native_finish_reason
        return result

    def _choice_text(self, index: int, text: str, logprobs: Any) -> CompletionChoice:
        echo, self._echo = self._echo, ""
        # Offsets count from the start of the choice's whole text, across chunks.
        start = self._offsets.get(index, 0) + len(echo)
        converted, _ = legacy_logprobs(logprobs, start)
        self._offsets[index] = start + len(text)
        return CompletionChoice(index=index, text=echo + text, logprobs=converted)

    def _result(
        self,
        chunk: ChatChunk,
        choices: list[CompletionChoice],
        usage: Usage | None = None,
        error: Any = UNSET,
    ) -> CompletionResult:
        return CompletionResult(
            id=chunk.id,
            created=chunk.created,
            model=chunk.model,
            choices=choices,
            provider=chunk.provider,
            system_fingerprint=chunk.system_fingerprint
            if isinstance(chunk.system_fingerprint, str)
            else None,
            usage=usage if usage is not None else UNSET,
            error=error,
            openrouter_metadata=chunk.openrouter_metadata if usage is not None else UNSET,
        )


async def completion_frames(session: StreamSession, echo: str = "") -> AsyncIterator[bytes]:
    """The stream as legacy Completions SSE frames, ending in a usage chunk and ``[DONE]``."""
    translator = ChunkTranslator(echo)
    async with contextlib.aclosing(session.events()) as events:
        async for chunk in events:
            if chunk is None:
                yield KEEPALIVE_FRAME
                continue
            for out in translator.translate(chunk):
                yield frame(encode(out))
    if session.finish_reason != "error":
        yield DONE_FRAME
