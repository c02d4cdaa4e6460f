"""A provider that speaks HTTP: an adapter for translation plus the shared upstream client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import msgspec

from switchyard.catalog import Endpoint, ProviderSpec
from switchyard.errors import UpstreamError
from switchyard.providers.base import HttpAdapter, InlineImages, StreamState
from switchyard.sse import DONE, SSEEvent
from switchyard.upstream.client import UpstreamClient, translate
from switchyard.upstream.fetch import ImageFetcher
from switchyard.wire.chat import (
    AssistantMessage,
    ChatChunk,
    ChatRequest,
    ChatResult,
    ImagePart,
    Message,
    ToolMessage,
    UserMessage,
)

log = logging.getLogger("switchyard.providers")

# What an adapter raises when upstream bytes are not the shape it expects. Adapters read
# loosely decoded JSON (``data.get(...)``), so a body that is valid JSON of the wrong shape
# surfaces as a KeyError or TypeError as easily as a msgspec error; all of them are the
# upstream's fault and become one UpstreamError here, never a 500.
MALFORMED_UPSTREAM: tuple[type[Exception], ...] = (
    msgspec.DecodeError,
    msgspec.ValidationError,
    KeyError,
    IndexError,
    TypeError,
    AttributeError,
    ValueError,
)


class HttpProvider:
    def __init__(
        self,
        spec: ProviderSpec,
        adapter: HttpAdapter,
        client: UpstreamClient,
        fetcher: ImageFetcher | None = None,
    ) -> None:
        self.spec = spec
        self.adapter = adapter
        self._client = client
        self._fetcher = fetcher or ImageFetcher()
        # Checked once: isinstance against a runtime Protocol is slow for a per-request path.
        self._inliner = adapter if isinstance(adapter, InlineImages) else None

    def start(self) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {}

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> ChatResult:
        request = await self._inline_images(request)
        upstream = self.adapter.build_request(request, endpoint, stream=False)
        response = await self._client.send(upstream, self.spec.name)
        try:
            body = await response.read()
        except BaseException as exc:
            response.close()
            raise translate(exc, self.spec.name) from None
        finally:
            response.release()
        if response.status >= 400:
            raise self.adapter.map_error(response.status, dict(response.headers), body)
        try:
            return self.adapter.parse_response(body)
        except MALFORMED_UPSTREAM as exc:
            log.warning("%s: unexpected response shape", self.spec.name, exc_info=True)
            raise UpstreamError(
                f"{self.spec.name} returned a response that is not valid: {_describe(exc)}",
                provider=self.spec.name,
            ) from None

    async def open_stream(self, request: ChatRequest, endpoint: Endpoint) -> HttpChunkStream:
        request = await self._inline_images(request)
        upstream = self.adapter.build_request(request, endpoint, stream=True)
        response = await self._client.send(upstream, self.spec.name)
        if response.status >= 400:
            try:
                body = await response.read()
            except BaseException as exc:
                raise translate(exc, self.spec.name) from None
            finally:
                response.release()
            raise self.adapter.map_error(response.status, dict(response.headers), body)
        return HttpChunkStream(response, self.adapter, self.spec.name)

    async def aclose(self) -> None:
        return None

    async def _inline_images(self, request: ChatRequest) -> ChatRequest:
        """The request with the image URLs the adapter cannot pass on replaced by data."""
        adapter = self._inliner
        if adapter is None:
            return request
        wanted: dict[tuple[int, int], tuple[str, str]] = {}
        for i, message in enumerate(request.messages):
            content = getattr(message, "content", None)
            if not isinstance(content, list):
                continue
            for j, part in enumerate(content):
                url = part.image_url.url if isinstance(part, ImagePart) else ""
                if url.lower().startswith(("http://", "https://")) and adapter.wants_inline(url):
                    wanted[i, j] = (url, f"messages[{i}].content[{j}].image_url.url")
        if not wanted:
            return request
        fetched = await asyncio.gather(
            *(self._fetcher.fetch_data_url(url, field) for url, field in wanted.values())
        )
        data_urls = dict(zip(wanted, fetched, strict=True))
        messages = [
            _with_images(message, i, data_urls) for i, message in enumerate(request.messages)
        ]
        return msgspec.structs.replace(request, messages=messages)


def _with_images(message: Message, index: int, data_urls: dict[tuple[int, int], str]) -> Message:
    if not isinstance(message, UserMessage | AssistantMessage | ToolMessage):
        return message
    content = message.content
    if not isinstance(content, list) or not any(
        (index, j) in data_urls for j in range(len(content))
    ):
        return message
    parts = [
        msgspec.structs.replace(
            part, image_url=msgspec.structs.replace(part.image_url, url=data_urls[index, j])
        )
        if isinstance(part, ImagePart) and (index, j) in data_urls
        else part
        for j, part in enumerate(content)
    ]
    return msgspec.structs.replace(message, content=parts)


def _describe(exc: Exception) -> str:
    if isinstance(exc, msgspec.DecodeError | msgspec.ValidationError):
        return str(exc)
    return f"unexpected shape ({type(exc).__name__})"


class HttpChunkStream:
    """Reads SSE from an open upstream response and yields canonical chunks."""

    def __init__(
        self, response: aiohttp.ClientResponse, adapter: HttpAdapter, provider: str
    ) -> None:
        self._response = response
        self._adapter = adapter
        self._provider = provider

    async def __aiter__(self) -> AsyncIterator[ChatChunk]:
        parser = self._adapter.stream_parser()
        state = StreamState()
        finished = False
        try:
            async for data in self._response.content.iter_any():
                for event in parser.feed(data):
                    if event.data == DONE:
                        finished = True
                        continue
                    for chunk in self._parse(event, state):
                        if chunk.choices and chunk.choices[0].finish_reason:
                            finished = True
                        yield chunk
            for event in parser.flush():
                if event.data != DONE:
                    for chunk in self._parse(event, state):
                        yield chunk
        except UpstreamError:
            raise
        except BaseException as exc:
            raise translate(exc, self._provider) from None
        if not finished:
            raise UpstreamError(
                f"{self._provider} ended the stream before it finished", provider=self._provider
            )
        self._response.release()

    def _parse(self, event: SSEEvent, state: StreamState) -> list[ChatChunk]:
        try:
            return self._adapter.parse_stream_event(event, state)
        except MALFORMED_UPSTREAM as exc:
            log.warning("%s: unexpected stream event shape", self._provider, exc_info=True)
            raise UpstreamError(
                f"{self._provider} sent a stream event that is not valid: {_describe(exc)}",
                provider=self._provider,
            ) from None

    async def aclose(self) -> None:
        # Closing (not releasing) drops the connection, which is how an HTTP upstream
        # learns that the client has gone and stops generating.
        self._response.close()
