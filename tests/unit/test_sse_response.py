"""SSEResponse: frames ready together go out in one write; none waits for a later one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from switchyard.server.responses import SSEResponse


class _Client:
    """An ASGI receive/send pair that records body writes and can disconnect."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.ended = False
        self.gone = asyncio.Event()
        self.wrote = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            if message["body"]:
                self.bodies.append(message["body"])
                self.wrote.set()
            if not message.get("more_body", False):
                self.ended = True


async def _run(response: SSEResponse, client: _Client) -> None:
    await response({"type": "http"}, client.receive, client.send)


async def test_frames_ready_together_are_written_together() -> None:
    async def frames() -> AsyncIterator[bytes]:
        for i in range(5):  # all ready without waiting, as frames parsed from one read
            yield b"data: %d\n\n" % i

    client = _Client()
    await _run(SSEResponse(frames(), {}), client)
    assert b"".join(client.bodies) == b"".join(b"data: %d\n\n" % i for i in range(5))
    assert len(client.bodies) < 5
    assert client.ended


async def test_a_frame_is_not_held_back_waiting_for_the_next() -> None:
    release = asyncio.Event()

    async def frames() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        await release.wait()
        yield b"data: second\n\n"

    client = _Client()
    task = asyncio.ensure_future(_run(SSEResponse(frames(), {}), client))
    await asyncio.wait_for(client.wrote.wait(), 1)
    assert client.bodies == [b"data: first\n\n"]
    release.set()
    await asyncio.wait_for(task, 1)
    assert client.bodies == [b"data: first\n\n", b"data: second\n\n"]
    assert client.ended


async def test_an_error_in_the_frames_propagates_after_what_was_ready() -> None:
    async def frames() -> AsyncIterator[bytes]:
        yield b"data: one\n\n"
        raise RuntimeError("broken")

    client = _Client()
    with pytest.raises(RuntimeError, match="broken"):
        await _run(SSEResponse(frames(), {}), client)
    assert b"".join(client.bodies) == b"data: one\n\n"
    assert not client.ended


async def test_a_disconnect_stops_the_frames_and_calls_back() -> None:
    closed = asyncio.Event()
    called = asyncio.Event()

    async def frames() -> AsyncIterator[bytes]:
        try:
            yield b"data: one\n\n"
            await asyncio.sleep(30)
            yield b"data: never\n\n"
        finally:
            closed.set()

    async def on_disconnect() -> None:
        called.set()

    client = _Client()
    task = asyncio.ensure_future(_run(SSEResponse(frames(), {}, on_disconnect), client))
    await asyncio.wait_for(client.wrote.wait(), 1)
    client.gone.set()
    await asyncio.wait_for(task, 1)
    assert closed.is_set() and called.is_set()
    assert client.bodies == [b"data: one\n\n"]
