"""What every provider offers the executor, and the sans-IO seam for HTTP protocols.

A :class:`Provider` serves chat requests for its endpoints. Most speak HTTP: they pair an
:class:`HttpAdapter` (pure translation, no I/O) with the shared upstream client in
:mod:`switchyard.providers.http`. The embedded model implements :class:`Provider` itself.
An :class:`Embedder` is the same idea for embeddings requests.

Errors: providers raise :class:`switchyard.errors.UpstreamError` (or a subclass) for any
failure of the provider. Raised from ``complete`` or ``open_stream`` it means nothing has
reached the client yet, so the executor may try another endpoint; raised while iterating a
stream it means the stream broke after its first byte.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from switchyard.catalog import Endpoint, ProviderSpec
from switchyard.sse import SSEEvent
from switchyard.wire.chat import ChatChunk, ChatRequest, ChatResult
from switchyard.wire.embeddings import Embedded, EmbeddingJob


class ChunkStream(Protocol):
    """An established upstream stream of canonical chunks."""

    def __aiter__(self) -> AsyncIterator[ChatChunk]: ...

    async def aclose(self) -> None:
        """Stop the upstream work (close the connection, cancel generation)."""


class Provider(Protocol):
    spec: ProviderSpec

    def start(self) -> None:
        """Begin warming up, if the provider needs to (loading a local model)."""

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> ChatResult: ...

    async def open_stream(self, request: ChatRequest, endpoint: Endpoint) -> ChunkStream:
        """Return once the upstream has accepted the request (its status is known)."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters for the health endpoint (empty when there is nothing to report)."""
        ...

    async def aclose(self) -> None: ...


class Embedder(Protocol):
    """Turns inputs into vectors for its endpoints: the embeddings counterpart of Provider.

    Errors follow :class:`Provider`'s rule: an :class:`UpstreamError` that is ``retryable``
    lets the service try the next endpoint.
    """

    spec: ProviderSpec
    # Whether token-id arrays can be embedded (they only mean something to the tokenizer
    # the ids came from, so a local model with its own vocabulary refuses them).
    accepts_token_arrays: bool

    def start(self) -> None:
        """Begin warming up, if the embedder needs to (loading a local model)."""

    async def embed(self, job: EmbeddingJob, endpoint: Endpoint) -> Embedded:
        """One vector per input, in input order."""
        ...

    def stats(self) -> dict[str, int]:
        """Counters for the health endpoint (empty when there is nothing to report)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class StreamState:
    """Per-stream memory an adapter may need between events."""

    usage_seen: bool = False
    extra: dict[str, object] = field(default_factory=dict)


class StreamParser(Protocol):
    """Bytes in, framed events out (SSE, newline-delimited JSON, AWS event stream, ...).

    Non-SSE framings reuse :class:`SSEEvent` as the envelope: ``data`` is one message's
    payload and ``event`` its type, when the framing has one.
    """

    def feed(self, chunk: bytes) -> list[SSEEvent]: ...

    def flush(self) -> list[SSEEvent]:
        """End of the body: whatever complete event is still buffered."""
        ...


class HttpAdapter(Protocol):
    """Translate between canonical chat types and one HTTP protocol. No I/O."""

    def stream_parser(self) -> StreamParser:
        """A fresh parser for one streamed response body."""
        ...

    def build_request(
        self, request: ChatRequest, endpoint: Endpoint, *, stream: bool
    ) -> UpstreamRequest: ...

    def parse_response(self, body: bytes) -> ChatResult: ...

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatChunk]: ...

    def map_error(self, status: int, headers: dict[str, str], body: bytes) -> Exception: ...


@runtime_checkable
class InlineImages(Protocol):
    """An adapter whose upstream takes image bytes, not URLs, implements this.

    :class:`~switchyard.providers.http.HttpProvider` then fetches the image URLs it names
    (under the guards of :mod:`switchyard.upstream.fetch`) and hands the adapter ``data:``
    URLs instead, so the adapter itself stays free of I/O.
    """

    def wants_inline(self, url: str) -> bool:
        """Whether this http(s) image URL must be fetched and sent inline."""
        ...
