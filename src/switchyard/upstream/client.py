"""One pooled aiohttp session per process, with explicit limits and timeouts.

aiohttp was chosen over httpx by measurement (bench/http_clients.py): at the concurrency a
gateway sees it costs several times less CPU per request. Transport failures are translated
to :class:`UpstreamError` here, and nowhere else, with the provider named and no secrets.
"""

from __future__ import annotations

import asyncio

import aiohttp

from switchyard.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from switchyard.providers.base import UpstreamRequest


class UpstreamClient:
    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        max_connections: int = 1000,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, keepalive_timeout=30, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                # Upstream bodies are passed through as bytes; skip aiohttp's cookie handling.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
            )
        return self._session

    async def send(self, request: UpstreamRequest, provider: str) -> aiohttp.ClientResponse:
        """Send and return once the response status and headers have arrived."""
        try:
            return await self.session.request(
                request.method, request.url, data=request.body, headers=request.headers
            )
        except BaseException as exc:
            raise translate(exc, provider) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def translate(exc: BaseException, provider: str) -> BaseException:
    """Map a transport exception to an UpstreamError; leave cancellation alone."""
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
        return exc
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamTimeout(f"{provider} timed out", provider=provider)
    if isinstance(exc, aiohttp.ClientConnectorError):
        # The message names host and port only; URLs may carry credentials in query strings.
        return UpstreamUnavailable(
            f"Could not connect to {provider}: {exc.os_error.strerror or 'connection failed'}",
            provider=provider,
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return UpstreamError(f"{provider} closed the connection", provider=provider)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return UpstreamError(f"{provider} request failed: {type(exc).__name__}", provider=provider)
    return exc
