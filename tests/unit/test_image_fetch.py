"""The guarded image fetcher: public addresses only, pinned DNS, checked redirects, caps.

A local aiohttp server plays the image host. It listens on 127.0.0.1, which the default
address check refuses, so tests that need to reach it pass an explicit ``address_allowed``
that admits exactly 127.0.0.1 and nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from switchyard.catalog import load_catalog
from switchyard.errors import InvalidRequest
from switchyard.providers.gemini import GeminiAdapter
from switchyard.providers.http import HttpProvider
from switchyard.providers.openai import Credentials
from switchyard.upstream.client import UpstreamClient
from switchyard.upstream.fetch import FetchLimits, ImageFetcher, IPAddress, is_public_address
from switchyard.wire.chat import ChatRequest
from switchyard.wire.codec import decode_request
from tests.simulators.gemini_sim import DEFAULT_API_KEY, GeminiSimulator

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
    "rkJggg=="
)
FIELD = "messages[0].content[1].image_url.url"
LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


def only_loopback(address: IPAddress) -> bool:
    return address == LOOPBACK


class ImageHost:
    def __init__(self) -> None:
        self.hits: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def url(self, name: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{name}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.hits.append(name)
        if name == "png":
            return web.Response(body=PNG, content_type="image/png")
        if name == "html":
            return web.Response(text="<html></html>", content_type="text/html")
        if name == "big":
            return web.Response(body=b"\0" * 5000, content_type="image/png")
        if name == "big-chunked":
            response = web.StreamResponse(headers={"Content-Type": "image/png"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for _ in range(100):
                await response.write(b"\0" * 1000)
            return response
        if name == "slow":
            response = web.StreamResponse(headers={"Content-Type": "image/png"})
            await response.prepare(request)
            for _ in range(100):
                await response.write(b"\0")
                await asyncio.sleep(0.1)
            return response
        if name == "missing":
            return web.Response(status=404)
        if name.startswith("to-"):
            target = request.query["to"]
            raise web.HTTPFound(target)
        raise web.HTTPNotFound()


@pytest.fixture
async def host() -> AsyncIterator[ImageHost]:
    server = ImageHost()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::ffff:93.184.216.34", True),
        ("64:ff9b::a00:1", False),
        ("2002:7f00:1::", False),
    ],
)
def test_public_address(address: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(address)) is public


async def test_fetches_an_image_as_a_data_url(host: ImageHost) -> None:
    fetcher = ImageFetcher(address_allowed=only_loopback)
    url = await fetcher.fetch_data_url(host.url("png"), FIELD)
    assert url == "data:image/png;base64," + base64.b64encode(PNG).decode()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/png",
        "http://localhost:{port}/png",
        "http://[::1]:{port}/png",
        "http://[::ffff:127.0.0.1]:{port}/png",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/png",
        "http://0.0.0.0:{port}/png",
    ],
)
async def test_default_check_refuses_internal_hosts_before_connecting(
    host: ImageHost, url: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await ImageFetcher().fetch_data_url(url.format(port=host.port), FIELD)
    assert caught.value.field == FIELD
    assert "not a public address" in caught.value.message
    assert host.hits == []


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "file:///etc/passwd", "http:///x"])
async def test_other_schemes_and_hostless_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await ImageFetcher().fetch_data_url(url, FIELD)
    assert caught.value.field == FIELD


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest", "http://[::1]/x", "http://10.0.0.7/x"]
)
async def test_redirects_into_internal_addresses_are_refused(host: ImageHost, target: str) -> None:
    fetcher = ImageFetcher(address_allowed=only_loopback)
    with pytest.raises(InvalidRequest, match="not a public address"):
        await fetcher.fetch_data_url(host.url("to-x") + f"?to={target}", FIELD)
    assert host.hits == ["to-x"]


async def test_allowed_redirects_are_followed_and_capped(host: ImageHost) -> None:
    fetcher = ImageFetcher(FetchLimits(max_redirects=1), address_allowed=only_loopback)
    once = host.url("to-a") + "?to=/png"
    assert (await fetcher.fetch_data_url(once, FIELD)).startswith("data:image/png;base64,")
    twice = host.url("to-b") + "?to=" + host.url("to-c") + "%3Fto%3D/png"
    with pytest.raises(InvalidRequest, match="redirected more than 1"):
        await fetcher.fetch_data_url(twice, FIELD)


@pytest.mark.parametrize("name", ["big", "big-chunked"])
async def test_oversize_bodies_are_cut_off(host: ImageHost, name: str) -> None:
    fetcher = ImageFetcher(FetchLimits(max_bytes=4096), address_allowed=only_loopback)
    with pytest.raises(InvalidRequest, match="larger than 4096 bytes"):
        await fetcher.fetch_data_url(host.url(name), FIELD)


async def test_slow_bodies_are_cut_off(host: ImageHost) -> None:
    fetcher = ImageFetcher(FetchLimits(total_seconds=0.5), address_allowed=only_loopback)
    started = asyncio.get_running_loop().time()
    with pytest.raises(InvalidRequest, match=r"longer than 0\.5 s"):
        await fetcher.fetch_data_url(host.url("slow"), FIELD)
    assert asyncio.get_running_loop().time() - started < 2


@pytest.mark.parametrize(("name", "why"), [("html", "not an image"), ("missing", "status 404")])
async def test_non_images_and_errors_are_refused(host: ImageHost, name: str, why: str) -> None:
    fetcher = ImageFetcher(address_allowed=only_loopback)
    with pytest.raises(InvalidRequest, match=why):
        await fetcher.fetch_data_url(host.url(name), FIELD)


async def test_connects_to_the_address_it_checked(
    host: ImageHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DNS answer that changes after the check (rebinding) is never consulted."""
    loop = asyncio.get_running_loop()
    answers = ["127.0.0.1", "127.0.0.2"]  # nothing listens on .2: a second lookup would fail
    lookups: list[str] = []

    async def getaddrinfo(host_: str, port: int, **kw: Any) -> list[Any]:
        lookups.append(host_)
        address = answers[min(len(lookups) - 1, 1)]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    fetcher = ImageFetcher(
        address_allowed=lambda a: a in (LOOPBACK, ipaddress.IPv4Address("127.0.0.2"))
    )
    url = await fetcher.fetch_data_url(host.url("png", host="images.test"), FIELD)
    assert url.startswith("data:image/png;base64,")
    assert lookups == ["images.test"]


# --- wiring: HttpProvider inlines images for adapters that ask for it --------------------


@pytest.fixture
async def gemini() -> AsyncIterator[GeminiSimulator]:
    sim = GeminiSimulator()
    await sim.start()
    yield sim
    await sim.stop()


def _provider(sim: GeminiSimulator, fetcher: ImageFetcher) -> tuple[HttpProvider, Any]:
    catalog = load_catalog()
    spec = catalog.providers["google-ai-studio"]
    adapter = GeminiAdapter(spec, Credentials(DEFAULT_API_KEY, sim.base_url, "v1beta"), catalog)
    (endpoint,) = [
        e
        for e in catalog.endpoints_for("google/gemini-2.5-flash")
        if e.provider == "google-ai-studio"
    ]
    return HttpProvider(spec, adapter, UpstreamClient(), fetcher), endpoint


def _image_request(url: str) -> ChatRequest:
    body = {
        "model": "google/gemini-2.5-flash",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
    }
    return decode_request(json.dumps(body).encode(), ChatRequest)


async def test_provider_sends_fetched_images_inline(
    host: ImageHost, gemini: GeminiSimulator
) -> None:
    provider, endpoint = _provider(gemini, ImageFetcher(address_allowed=only_loopback))
    await provider.complete(_image_request(host.url("png")), endpoint)
    (sent,) = gemini.requests()
    parts = sent["body"]["contents"][0]["parts"]
    assert parts[1] == {
        "inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}
    }


async def test_provider_refuses_internal_image_urls(
    host: ImageHost, gemini: GeminiSimulator
) -> None:
    provider, endpoint = _provider(gemini, ImageFetcher())
    with pytest.raises(InvalidRequest) as caught:
        await provider.open_stream(_image_request(host.url("png")), endpoint)
    assert caught.value.field == FIELD
    assert host.hits == []
    assert gemini.requests() == []
