"""Fetching a client's image URL ourselves, for providers that only take inline image data.

The gateway fetching a URL a client chose is a server-side request forgery risk: the URL
may point at the gateway's own network (a metadata service, an admin port, a database).
So a fetch here:

- takes http and https URLs only;
- resolves the host once, refuses it if *any* address it resolves to is not a public
  unicast address (private, loopback, link-local, multicast, reserved, unspecified,
  shared, and the same inside IPv4-mapped, NAT64, 6to4 and Teredo IPv6 addresses);
- connects to exactly the addresses it checked (a pinned resolver), so a second DNS
  answer cannot swap in an internal address between the check and the connect;
- follows a few redirects by hand, checking every hop like the first URL (aiohttp's own
  redirect handling would connect before we could look);
- caps the body in bytes and the whole fetch (every hop) in seconds;
- takes only ``image/*`` content types.

Failures are the client's: they raise :class:`InvalidRequest` naming the field that held
the URL.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from switchyard.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is a public unicast address we may connect to for a client."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # Each of these forms reaches an IPv4 host, which must pass the IPv4 check.
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


@dataclass(frozen=True, slots=True)
class FetchLimits:
    max_bytes: int = 10 * 1024 * 1024
    total_seconds: float = 10.0
    max_redirects: int = 3


class _PinnedResolver(AbstractResolver):
    """Answers every lookup with the addresses already checked: no second DNS query."""

    def __init__(self, host: str, addresses: list[IPAddress]) -> None:
        self._host = host
        self._addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self._host:
            raise OSError(f"unexpected host {host!r}")
        return [
            ResolveResult(
                hostname=host,
                host=str(a),
                port=port,
                family=socket.AF_INET6 if a.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in self._addresses
        ]

    async def close(self) -> None:
        return None


class ImageFetcher:
    """Turns an http(s) image URL into a ``data:`` URL, under the guards above.

    ``address_allowed`` exists for tests that serve images from 127.0.0.1; production code
    keeps the default.
    """

    def __init__(
        self,
        limits: FetchLimits | None = None,
        *,
        address_allowed: Callable[[IPAddress], bool] = is_public_address,
    ) -> None:
        self.limits = limits or FetchLimits()
        self._allowed = address_allowed

    async def fetch_data_url(self, url: str, field: str) -> str:
        try:
            async with asyncio.timeout(self.limits.total_seconds):
                media_type, body = await self._follow(url, field)
        except TimeoutError:
            raise InvalidRequest(
                f"`{field}`: fetching the image took longer than {self.limits.total_seconds:g} s",
                field=field,
            ) from None
        return f"data:{media_type};base64,{base64.b64encode(body).decode('ascii')}"

    async def _follow(self, url: str, field: str) -> tuple[str, bytes]:
        for _ in range(self.limits.max_redirects + 1):
            host, port = _target(url, field)
            addresses = await self._checked_addresses(host, port, field)
            result = await self._get(url, host, addresses, field)
            if isinstance(result, str):
                url = result
                continue
            return result
        raise InvalidRequest(
            f"`{field}`: the image URL redirected more than {self.limits.max_redirects} times",
            field=field,
        )

    async def _checked_addresses(self, host: str, port: int, field: str) -> list[IPAddress]:
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except (OSError, UnicodeError):
                raise InvalidRequest(
                    f"`{field}`: the image host {host!r} could not be resolved", field=field
                ) from None
            # Scope ids ("%eth0") are dropped: the address itself decides.
            addresses = list(
                dict.fromkeys(ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos)
            )
        if not addresses or not all(self._allowed(a) for a in addresses):
            raise InvalidRequest(
                f"`{field}`: the image host {host!r} is not a public address; "
                "the gateway fetches images only from the public internet",
                field=field,
            )
        return addresses

    async def _get(
        self, url: str, host: str, addresses: list[IPAddress], field: str
    ) -> str | tuple[str, bytes]:
        """The redirect target, or the image's media type and bytes."""
        connector = aiohttp.TCPConnector(
            resolver=_PinnedResolver(host, addresses), force_close=True, use_dns_cache=False
        )
        try:
            async with (
                aiohttp.ClientSession(
                    connector=connector, cookie_jar=aiohttp.DummyCookieJar()
                ) as session,
                session.get(url, allow_redirects=False, headers={"Accept": "image/*"}) as response,
            ):
                if response.status in _REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise _refused(field, f"a {response.status} without a Location")
                    return urljoin(url, location)
                if response.status != 200:
                    raise _refused(field, f"status {response.status}")
                media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
                if not media_type.lower().startswith("image/"):
                    raise _refused(field, f"content type {media_type or 'none'!r}, not an image")
                return media_type.lower(), await self._read_capped(response, field)
        except InvalidRequest:
            raise
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise _refused(field, type(exc).__name__) from None

    async def _read_capped(self, response: aiohttp.ClientResponse, field: str) -> bytes:
        cap = self.limits.max_bytes
        if response.content_length is not None and response.content_length > cap:
            raise _too_large(field, cap)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > cap:
                raise _too_large(field, cap)
            chunks.append(chunk)
        return b"".join(chunks)


def _target(url: str, field: str) -> tuple[str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidRequest(
            f"`{field}`: only http and https image URLs can be fetched", field=field
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host:
        raise InvalidRequest(f"`{field}`: the image URL has no valid host", field=field)
    return host, port or (443 if scheme == "https" else 80)


def _refused(field: str, why: str) -> InvalidRequest:
    return InvalidRequest(f"`{field}`: the image could not be fetched ({why})", field=field)


def _too_large(field: str, cap: int) -> InvalidRequest:
    return InvalidRequest(f"`{field}`: the image is larger than {cap} bytes", field=field)
