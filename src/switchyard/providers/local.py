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

Several models: each local endpoint names its GGUF in ``upstream_model`` (located by
:mod:`switchyard.providers.gguf`), and each file gets its own pool of workers and its own
queue, so a slow model never holds up another. Files in ``[local] preload`` load at start-up,
the others on their first request.

Base models: a model whose catalog ``architecture.instruct_type`` is ``none`` (OpenRouter's
value for "no instruction format") has no chat template. It is given the raw text of the
messages, joined by blank lines, with no roles or markers: a single user message, which is
what the legacy completions surface sends, reaches the model exactly as the client wrote it.
"""

from __future__ import annotations

import asyncio
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

from switchyard.catalog import Catalog, Endpoint, ProviderSpec
from switchyard.errors import UpstreamError, UpstreamUnavailable
from switchyard.providers.gguf import GGUF, INSTALL_HINT, SMOLLM2, default_cache_dir, locate
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

FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}
# OpenRouter's instruct_type for a model with no instruction format: a base model.
NO_INSTRUCT_FORMAT = "none"


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


class _KeepStdio:
    """Stands in for llama-cpp-python's ``suppress_stdout_stderr``; see :func:`_keep_stdio`."""

    def __init__(self, disable: bool = True) -> None:
        pass

    def __enter__(self) -> _KeepStdio:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _keep_stdio() -> None:
    """Stop llama-cpp-python from pointing the whole process's stdout/stderr at /dev/null.

    With ``verbose=False`` it dup2()s /dev/null over fds 1 and 2 while a model loads. That is
    process-wide: for the seconds a load takes, every other thread's log lines vanish (a
    request's warnings, the server's own messages). llama.cpp's chatter already passes
    through llama-cpp-python's log callback, which ``verbose=False`` filters, so without the
    redirect a load still prints only a line or two of llama.cpp warnings.
    """
    from llama_cpp import _internals, llama, llama_chat_format

    modules: tuple[Any, ...] = (llama, _internals, llama_chat_format)
    for module in modules:
        module.suppress_stdout_stderr = _KeepStdio


def _tracing_llama_class() -> type:
    import llama_cpp

    _keep_stdio()

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


def to_raw_prompt(request: ChatRequest) -> str:
    """A base model's input: the messages' text in order, without roles or template."""
    return "\n\n".join(_text(message.content) for message in request.messages)


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
    def __init__(self, index: int, gguf: GGUF, n_ctx: int, threads: int | None) -> None:
        self.index = index
        self._gguf = gguf
        self._n_ctx = n_ctx
        self._threads = threads
        self.thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"llama-{gguf.name}-{index}"
        )
        self._llama: Any = None
        self._lock = threading.Lock()

    def llama(self) -> Any:
        """Load on first use (in the worker thread): 0.7 s for SmolLM2, 3 s for Gemma 270M."""
        with self._lock:
            if self._llama is None:
                cls = _tracing_llama_class()
                self._llama = cls(
                    model_path=self._gguf.ensure(),
                    n_ctx=self._n_ctx,
                    n_threads=self._threads,
                    verbose=False,
                )
            return self._llama

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    def clear_trace(self) -> None:
        if self._llama is not None:
            self._llama.trace = None


class _Pool:
    """One GGUF's workers, and the fair queue of requests waiting for them."""

    def __init__(self, gguf: GGUF, n_ctx: int, config: LocalModelConfig, provider: str) -> None:
        self.gguf = gguf
        self._provider = provider
        self._queue_size = config.queue_size
        self.workers = [
            _Worker(i, gguf, n_ctx, config.threads) for i in range(max(1, config.workers))
        ]
        self._idle: asyncio.Queue[_Worker] | None = None
        self.waiting = 0
        self.busy = 0
        self.cancelled = 0
        self._seconds_per_request = 2.0  # a running estimate, for Retry-After

    def start(self) -> None:
        """Load every worker's model in its own thread, so the first request is fast."""
        for worker in self.workers:
            worker.thread.submit(worker.llama)

    def _queue(self) -> asyncio.Queue[_Worker]:
        # Created lazily: it binds to the running event loop.
        if self._idle is None:
            self._idle = asyncio.Queue()
            for worker in self.workers:
                self._idle.put_nowait(worker)
        return self._idle

    async def acquire(self) -> _Worker:
        idle = self._queue()
        if idle.empty() and self.waiting >= self._queue_size:
            retry = self._seconds_per_request * (self.waiting + 1) / len(self.workers)
            raise UpstreamUnavailable(
                f"The local model is busy: {self.waiting} requests are already waiting",
                provider=self._provider,
                retry_after=retry,
            )
        self.waiting += 1
        try:
            worker = await idle.get()
        finally:
            self.waiting -= 1
        self.busy += 1
        return worker

    def release(self, worker: _Worker, started: float, cancelled: bool = False) -> None:
        self.busy -= 1
        self.cancelled += cancelled
        elapsed = time.monotonic() - started
        self._seconds_per_request = 0.8 * self._seconds_per_request + 0.2 * elapsed
        self._queue().put_nowait(worker)

    def shutdown(self) -> None:
        for worker in self.workers:
            worker.thread.shutdown(wait=False, cancel_futures=True)


_END = object()


class LocalProvider:
    def __init__(self, spec: ProviderSpec, catalog: Catalog, config: LocalModelConfig) -> None:
        self.spec = spec
        self._config = config
        overrides = dict(config.gguf_paths)
        if config.model_path is not None:
            overrides.setdefault(SMOLLM2, config.model_path)
        cache_dir = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
        contexts: dict[str, int] = {}
        self._raw_models: set[str] = set()
        for endpoints in catalog.endpoints.values():
            for endpoint in endpoints:
                if endpoint.provider != spec.slug:
                    continue
                name = endpoint.upstream_model
                contexts[name] = max(contexts.get(name, 0), endpoint.context_length)
                if catalog.models[endpoint.model].architecture.instruct_type == NO_INSTRUCT_FORMAT:
                    self._raw_models.add(endpoint.model)
        self._pools: dict[str, _Pool] = {}
        self.missing: list[str] = []
        for name, context in contexts.items():
            gguf = locate(name, overrides, cache_dir)
            if gguf is None:
                self.missing.append(name)
                continue
            n_ctx = min(context, config.context_length)
            self._pools[name] = _Pool(gguf, n_ctx, config, spec.name)

    @property
    def files(self) -> dict[str, GGUF]:
        """The GGUF files this provider can serve, by name."""
        return {name: pool.gguf for name, pool in self._pools.items()}

    @property
    def raw_models(self) -> frozenset[str]:
        """Catalog models served without a chat template (base models)."""
        return frozenset(self._raw_models)

    def loaded_files(self) -> list[str]:
        """The files whose model is in memory now."""
        return [name for name, pool in self._pools.items() if any(w.loaded for w in pool.workers)]

    def start(self) -> None:
        for name in self._config.preload:
            pool = self._pools.get(name)
            if pool is not None:
                pool.start()

    def _pool(self, endpoint: Endpoint) -> _Pool:
        pool = self._pools.get(endpoint.upstream_model)
        if pool is None:
            name = endpoint.upstream_model
            hint = INSTALL_HINT.get(name, "set its path in [local] gguf_paths")
            raise UpstreamUnavailable(
                f"The local model file {name} is not installed ({hint})",
                provider=self.spec.name,
            )
        return pool

    def _load(self, worker: _Worker, endpoint: Endpoint) -> Any:
        try:
            return worker.llama()
        except Exception as exc:  # a missing, unwritable or corrupt file
            raise UpstreamUnavailable(
                f"The local model {endpoint.upstream_model} could not be loaded: {exc}",
                provider=self.spec.name,
            ) from None

    def _call(
        self, worker: _Worker, request: ChatRequest, endpoint: Endpoint, trace: _Trace, stream: bool
    ) -> Any:
        llama = self._load(worker, endpoint)
        llama.trace = trace
        kwargs = to_llama_kwargs(request, endpoint, {})
        try:
            if endpoint.model in self._raw_models:
                return _raw_completion(llama, request, kwargs, stream, self.spec.name)
            messages = to_llama_messages(request)
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
        pool = self._pool(endpoint)
        worker = await pool.acquire()
        started = time.monotonic()
        trace = _Trace(_top_logprobs(request))

        def run() -> Any:
            try:
                return self._call(worker, request, endpoint, trace, False)
            finally:
                worker.clear_trace()

        job = asyncio.get_running_loop().run_in_executor(worker.thread, run)
        # The worker goes back to the pool when its thread is done, not when we stop waiting.
        job.add_done_callback(lambda _: pool.release(worker, started, trace.cancelled.is_set()))
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
        pool = self._pool(endpoint)
        worker = await pool.acquire()
        if not worker.loaded:
            try:
                # A model that cannot load fails here, before the stream is accepted, so the
                # request can still fall back to another endpoint.
                await asyncio.get_running_loop().run_in_executor(
                    worker.thread, self._load, worker, endpoint
                )
            except BaseException:
                pool.release(worker, time.monotonic())
                raise
        return LocalChunkStream(self, pool, worker, request, endpoint)

    def stats(self) -> dict[str, int]:
        """Generations running and waiting, and how many were stopped by their client."""
        pools = self._pools.values()
        return {
            "busy": sum(p.busy for p in pools),
            "waiting": sum(p.waiting for p in pools),
            "cancelled": sum(p.cancelled for p in pools),
        }

    async def aclose(self) -> None:
        for pool in self._pools.values():
            pool.shutdown()


def _raw_completion(
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


class LocalChunkStream:
    """Chunks from the worker thread, handed over through an asyncio queue."""

    def __init__(
        self,
        provider: LocalProvider,
        pool: _Pool,
        worker: _Worker,
        request: ChatRequest,
        endpoint: Endpoint,
    ) -> None:
        self._provider = provider
        self._pool = pool
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
