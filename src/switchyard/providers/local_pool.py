"""The local model's workers, and the fair queue of requests waiting for them.

Each worker owns one llama.cpp context and one thread; a context is never used by two
requests at once. Requests wait for an idle worker in FIFO order (asyncio.Queue wakes
getters in arrival order); beyond ``queue_size`` waiters the provider answers 503 with
Retry-After. Generation runs in the worker's thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from switchyard.errors import UpstreamUnavailable
from switchyard.providers.gguf import GGUF
from switchyard.providers.local_trace import tracing_llama_class
from switchyard.settings import LocalModelConfig


class Worker:
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
                cls = tracing_llama_class()
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


class Pool:
    """One GGUF's workers, and the fair queue of requests waiting for them."""

    def __init__(self, gguf: GGUF, n_ctx: int, config: LocalModelConfig, provider: str) -> None:
        self.gguf = gguf
        self._provider = provider
        self._queue_size = config.queue_size
        self.workers = [
            Worker(i, gguf, n_ctx, config.threads) for i in range(max(1, config.workers))
        ]
        self._idle: asyncio.Queue[Worker] | None = None
        self.waiting = 0
        self.busy = 0
        self.cancelled = 0
        self._seconds_per_request = 2.0  # a running estimate, for Retry-After

    def start(self) -> None:
        """Load every worker's model in its own thread, so the first request is fast."""
        for worker in self.workers:
            worker.thread.submit(worker.llama)

    def _queue(self) -> asyncio.Queue[Worker]:
        # Created lazily: it binds to the running event loop.
        if self._idle is None:
            self._idle = asyncio.Queue()
            for worker in self.workers:
                self._idle.put_nowait(worker)
        return self._idle

    async def acquire(self) -> Worker:
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

    def release(self, worker: Worker, started: float, cancelled: bool = False) -> None:
        self.busy -= 1
        self.cancelled += cancelled
        elapsed = time.monotonic() - started
        self._seconds_per_request = 0.8 * self._seconds_per_request + 0.2 * elapsed
        self._queue().put_nowait(worker)

    def shutdown(self) -> None:
        for worker in self.workers:
            worker.thread.shutdown(wait=False, cancel_futures=True)
