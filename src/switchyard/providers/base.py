"""What every provider offers the executor, and the sans-IO seam for HTTP protocols.

A :class:`Provider` serves chat requests for its endpoints. Most speak HTTP: they pair an
:class:`HttpAdapter` (pure translation, no I/O) with the shared upstream client in
:mod:`switchyard.providers.http`. The embedded model implements :class:`Provider` itself.

Errors: providers raise :class:`switchyard.errors.UpstreamError` (or a subclass) for any
failure of the provider. Raised from ``complete`` or ``open_stream`` it means nothing has
reached the client yet, so the executor may try another endpoint; raised while iterating a
stream it means the stream broke after its first byte.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from switchyard.catalog import Endpoint, ProviderSpec
from switchyard.sse import SSEEvent
from switchyard.wire.chat import ChatChunk, ChatRequest, ChatResult


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


class HttpAdapter(Protocol):
    """Translate between canonical chat types and one HTTP protocol. No I/O."""

    def build_request(
        self, request: ChatRequest, endpoint: Endpoint, *, stream: bool
    ) -> UpstreamRequest: ...

    def parse_response(self, body: bytes) -> ChatResult: ...

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatChunk]: ...

    def map_error(self, status: int, headers: dict[str, str], body: bytes) -> Exception: ...
