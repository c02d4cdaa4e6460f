"""A provider that speaks HTTP: an adapter for translation plus the shared upstream client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import msgspec

from switchyard.catalog import Endpoint, ProviderSpec
from switchyard.errors import UpstreamError
from switchyard.providers.base import HttpAdapter, StreamState
from switchyard.sse import DONE, SSEParser
from switchyard.upstream.client import UpstreamClient, translate
from switchyard.wire.chat import ChatChunk, ChatRequest, ChatResult


class HttpProvider:
    def __init__(self, spec: ProviderSpec, adapter: HttpAdapter, client: UpstreamClient) -> None:
        self.spec = spec
        self.adapter = adapter
        self._client = client

    def start(self) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {}

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> ChatResult:
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
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamError(
                f"{self.spec.name} returned a response that is not valid: {exc}",
                provider=self.spec.name,
            ) from None

    async def open_stream(self, request: ChatRequest, endpoint: Endpoint) -> HttpChunkStream:
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


class HttpChunkStream:
    """Reads SSE from an open upstream response and yields canonical chunks."""

    def __init__(
        self, response: aiohttp.ClientResponse, adapter: HttpAdapter, provider: str
    ) -> None:
        self._response = response
        self._adapter = adapter
        self._provider = provider

    async def __aiter__(self) -> AsyncIterator[ChatChunk]:
        parser = SSEParser()
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

    def _parse(self, event: object, state: StreamState) -> list[ChatChunk]:
        try:
            return self._adapter.parse_stream_event(event, state)  # type: ignore[arg-type]
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamError(
                f"{self._provider} sent a stream event that is not valid: {exc}",
                provider=self._provider,
            ) from None

    async def aclose(self) -> None:
        # Closing (not releasing) drops the connection, which is how an HTTP upstream
        # learns that the client has gone and stops generating.
        self._response.close()
