"""llama.cpp output -> canonical chat: results, stream chunks, finish reasons and usage.

A stream's generation runs in the worker's thread and hands chunks to the event loop through
an asyncio queue; a client that goes away sets the trace's cancelled flag, which the thread
checks between tokens. llama.cpp's tool-call chunks are cleaned up into what OpenAI streams,
and a base model's plain completion is reshaped into the chat shapes. Token counts and
logprobs come from the generation's :class:`~switchyard.providers.local_trace.Trace`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from switchyard.catalog import Endpoint
from switchyard.errors import UpstreamError
from switchyard.providers.local_request import to_raw_prompt, top_logprobs, uses_tools
from switchyard.providers.local_trace import GenerationCancelled, Trace
from switchyard.wire.chat import (
    ChatChunk,
    ChatRequest,
    ChatResult,
    CompletionTokensDetails,
    PromptTokensDetails,
    Usage,
)

if TYPE_CHECKING:
    from switchyard.providers.local import LocalProvider
    from switchyard.providers.local_pool import Pool, Worker

FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}


def raw_completion(
    llama: Any, request: ChatRequest, kwargs: dict[str, Any], stream: bool, provider: str
) -> Any:
    """A base model's generation, in the chat shapes the rest of the provider reads."""
    if uses_tools(request):
        raise UpstreamError(
            "This is a base model without a chat template; it cannot call tools",
            provider=provider,
            status=400,
            retryable=False,
        )
    fmt = kwargs.pop("response_format", None)
    if fmt is not None:
        from llama_cpp.llama_chat_format import _grammar_for_response_format

        kwargs["grammar"] = _grammar_for_response_format(fmt)
    raw = llama.create_completion(prompt=to_raw_prompt(request), stream=stream, **kwargs)
    if not stream:
        return {
            **raw,
            "object": "chat.completion",
            "choices": [
                {
                    "index": c["index"],
                    "message": {"role": "assistant", "content": c["text"]},
                    "finish_reason": c["finish_reason"],
                }
                for c in raw["choices"]
            ],
        }
    return _raw_chunks(raw)


def _raw_chunks(chunks: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    first = True
    try:
        for raw in chunks:
            choices = []
            for c in raw["choices"]:
                delta: dict[str, Any] = {"content": c["text"]}
                if first:
                    delta["role"] = "assistant"
                choices.append(
                    {"index": c["index"], "delta": delta, "finish_reason": c["finish_reason"]}
                )
            first = False
            yield {**raw, "object": "chat.completion.chunk", "choices": choices}
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _usage(trace: Trace, reported: dict[str, Any] | None) -> Usage:
    prompt = trace.prompt_tokens
    if prompt is None and reported:
        prompt = int(reported.get("prompt_tokens", 0))
    completion = trace.completion_tokens
    return Usage(
        prompt_tokens=prompt or 0,
        completion_tokens=completion,
        total_tokens=(prompt or 0) + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=0),
    )


def to_chat_result(raw: Any, trace: Trace) -> ChatResult:
    """A llama.cpp chat completion as the canonical result, with the trace's logprobs and usage."""
    result = msgspec.convert(raw, ChatResult)
    for choice in result.choices:
        choice.native_finish_reason = choice.finish_reason
        choice.finish_reason = FINISH.get(choice.finish_reason or "", "stop")
        if trace.top_logprobs is not None:
            choice.logprobs = {"content": trace.logprobs, "refusal": None}
    result.usage = _usage(trace, raw.get("usage"))
    return result


def normalise_delta(raw: dict[str, Any], announced: set[int]) -> dict[str, Any]:
    """A llama.cpp stream chunk as Chat Completions streams it.

    llama.cpp's tool-call streams send ``null`` for delta fields they leave out (``role``,
    ``tool_calls``), and repeat each call's id, type and name on every chunk where OpenAI
    sends them once: clients concatenate what they receive, so repeats would corrupt the
    name. ``announced`` holds the tool-call indexes already sent whole.
    """
    for choice in raw.get("choices") or ():
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            continue
        clean = {k: v for k, v in delta.items() if v is not None or k == "content"}
        for call in clean.get("tool_calls") or ():
            index = call.get("index")
            function = call.get("function")
            if index in announced:
                call.pop("id", None)
                call.pop("type", None)
                if isinstance(function, dict):
                    function.pop("name", None)
            else:
                announced.add(index)
            for key in [k for k, v in call.items() if v is None]:
                del call[key]
            if isinstance(function, dict):
                for key in [k for k, v in function.items() if v is None]:
                    del function[key]
        choice["delta"] = clean
    return raw


_END = object()


class LocalChunkStream:
    """Chunks from the worker thread, handed over through an asyncio queue."""

    def __init__(
        self,
        provider: LocalProvider,
        pool: Pool,
        worker: Worker,
        request: ChatRequest,
        endpoint: Endpoint,
    ) -> None:
        self._provider = provider
        self._pool = pool
        self._worker = worker
        self._request = request
        self._endpoint = endpoint
        self._trace = Trace(top_logprobs(request))
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._started = time.monotonic()
        self._job: asyncio.Future[None] | None = None
        self._finished = False

    def _produce(self, loop: asyncio.AbstractEventLoop, put: Callable[[Any], None]) -> None:
        trace = self._trace
        try:
            chunks: Iterator[dict[str, Any]] = self._provider.call(
                self._worker, self._request, self._endpoint, trace, True
            )
            sent = 0
            for raw in chunks:
                if trace.cancelled.is_set():
                    break
                if trace.top_logprobs is not None:
                    # Attach the logprobs of the tokens sampled since the previous chunk.
                    new = trace.logprobs[sent:]
                    sent = len(trace.logprobs)
                    for choice in raw.get("choices", ()):
                        choice["logprobs"] = {"content": new, "refusal": None} if new else None
                loop.call_soon_threadsafe(put, raw)
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # stops llama.cpp's generator if we broke out early
        except GenerationCancelled:
            pass
        except BaseException as exc:  # handed to the event loop, raised there
            loop.call_soon_threadsafe(put, exc)
        finally:
            self._worker.clear_trace()
            self._finished = True  # set before _END is seen, so aclose() knows we are done
            loop.call_soon_threadsafe(put, _END)

    async def __aiter__(self) -> AsyncIterator[ChatChunk]:
        loop = asyncio.get_running_loop()
        self._job = loop.run_in_executor(
            self._worker.thread, self._produce, loop, self._queue.put_nowait
        )
        self._job.add_done_callback(
            lambda _: self._pool.release(
                self._worker, self._started, self._trace.cancelled.is_set()
            )
        )
        announced: set[int] = set()
        while True:
            item = await self._queue.get()
            if item is _END:
                break
            if isinstance(item, BaseException):
                if isinstance(item, UpstreamError):
                    raise item
                raise UpstreamError(
                    f"The local model failed: {item}", provider=self._provider.spec.name
                )
            try:
                chunk = msgspec.convert(normalise_delta(item, announced), ChatChunk)
            except msgspec.ValidationError as exc:
                # Said in-band like any upstream failure, rather than cutting the stream.
                raise UpstreamError(
                    f"The local model produced an unreadable chunk: {exc}",
                    provider=self._provider.spec.name,
                ) from None
            for choice in chunk.choices:
                if choice.finish_reason is not None:
                    choice.native_finish_reason = choice.finish_reason
                    choice.finish_reason = FINISH.get(choice.finish_reason, "stop")
            yield chunk
        yield ChatChunk(id="", created=0, model="", choices=[], usage=_usage(self._trace, None))

    async def aclose(self) -> None:
        if self._finished:
            return
        self._trace.cancelled.set()
        if self._job is None:
            # Never started: give the worker back now.
            self._pool.release(self._worker, self._started, cancelled=True)
            self._job = asyncio.get_running_loop().create_future()
            self._job.set_result(None)
