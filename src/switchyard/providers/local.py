"""The embedded model: llama.cpp in-process, with a fair queue and off-loop generation.

This is the provider the registry builds. It finds each local endpoint's GGUF, gives the file
a pool of workers (:mod:`switchyard.providers.local_pool`), and runs each request on one of
them: translated by :mod:`~switchyard.providers.local_request`, traced by
:mod:`~switchyard.providers.local_trace`, answered through
:mod:`~switchyard.providers.local_response`.

Several models: each local endpoint names its GGUF in ``upstream_model`` (located by
:mod:`switchyard.providers.gguf`), and each file gets its own pool of workers and its own
queue, so a slow model never holds up another. Files in ``[local] preload`` load at start-up,
the others on their first request.

Base models: a model whose catalog ``architecture.instruct_type`` is ``none`` (OpenRouter's
value for "no instruction format") has no chat template. It goes through llama.cpp's plain
completion with the raw text of the messages (see
:func:`~switchyard.providers.local_request.to_raw_prompt`), not through its chat API.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import msgspec
from msgspec import UNSET

from switchyard.catalog import Catalog, Endpoint, ProviderSpec
from switchyard.errors import UpstreamError, UpstreamUnavailable
from switchyard.providers.gguf import GGUF, INSTALL_HINT, SMOLLM2, default_cache_dir, locate
from switchyard.providers.local_pool import Pool, Worker
from switchyard.providers.local_request import (
    to_llama_kwargs,
    to_llama_messages,
    top_logprobs,
    uses_tools,
)
from switchyard.providers.local_response import LocalChunkStream, raw_completion, to_chat_result
from switchyard.providers.local_trace import Trace
from switchyard.settings import LocalModelConfig
from switchyard.wire.chat import ChatRequest, ChatResult

# llama.cpp's OpenMP threads spin while idle by default, stealing the core the event loop
# needs; measured here, a busy machine ran prompt evaluation 2.5x slower with spinning.
# Must be set before llama.cpp is loaded (this provider's modules import it lazily).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# OpenRouter's instruct_type for a model with no instruction format: a base model.
NO_INSTRUCT_FORMAT = "none"


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
        self._pools: dict[str, Pool] = {}
        self.missing: list[str] = []
        for name, context in contexts.items():
            gguf = locate(name, overrides, cache_dir)
            if gguf is None:
                self.missing.append(name)
                continue
            n_ctx = min(context, config.context_length)
            self._pools[name] = Pool(gguf, n_ctx, config, spec.name)

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

    def _pool(self, endpoint: Endpoint) -> Pool:
        pool = self._pools.get(endpoint.upstream_model)
        if pool is None:
            name = endpoint.upstream_model
            hint = INSTALL_HINT.get(name, "set its path in [local] gguf_paths")
            raise UpstreamUnavailable(
                f"The local model file {name} is not installed ({hint})",
                provider=self.spec.name,
            )
        return pool

    def _load(self, worker: Worker, endpoint: Endpoint) -> Any:
        try:
            return worker.llama()
        except Exception as exc:  # a missing, unwritable or corrupt file
            raise UpstreamUnavailable(
                f"The local model {endpoint.upstream_model} could not be loaded: {exc}",
                provider=self.spec.name,
            ) from None

    def call(
        self, worker: Worker, request: ChatRequest, endpoint: Endpoint, trace: Trace, stream: bool
    ) -> Any:
        """Run one generation in the worker's thread: a chat completion, or its chunks."""
        llama = self._load(worker, endpoint)
        llama.trace = trace
        kwargs = to_llama_kwargs(request, endpoint, {})
        try:
            if endpoint.model in self._raw_models:
                return raw_completion(llama, request, kwargs, stream, self.spec.name)
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
        trace = Trace(top_logprobs(request))

        def run() -> Any:
            try:
                return self.call(worker, request, endpoint, trace, False)
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
        return to_chat_result(raw, trace)

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
