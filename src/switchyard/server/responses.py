"""Responses: JSON bodies, error bodies, and the SSE stream that notices a client leaving."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from switchyard.errors import PayloadTooLarge, SwitchyardError, error_body


class JSONBytes(Response):
    media_type = "application/json"


def error_response(exc: SwitchyardError) -> Response:
    return JSONBytes(error_body(exc), status_code=exc.status, headers=exc.headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# Frames buffered for a client that reads slower than the upstream writes, before the
# upstream is no longer read.
_MAX_BATCH = 64


class SSEResponse:
    """Streams ``frames`` and watches for the client going away while it waits.

    Starlette's StreamingResponse only learns of a disconnect when a write fails, which can
    be long after the client left if the upstream is slow. Here a second task waits on
    ``receive()``; when the client disconnects the pump is cancelled at once, so the body's
    ``finally`` blocks close the upstream request (or stop the local generation).
    """

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        headers: dict[str, str],
        on_disconnect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._frames = frames
        self._on_disconnect = on_disconnect
        self._headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        self._headers.extend((k.lower().encode(), v.encode()) for k, v in headers.items())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self._headers})
        pump = asyncio.ensure_future(self._pump(send))
        watch = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not pump.done():
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await pump
                if self._on_disconnect is not None:
                    await self._on_disconnect()
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        if (
            not pump.cancelled()
            and (exc := pump.exception()) is not None
            and not isinstance(exc, OSError)
        ):
            raise exc

    async def _pump(self, send: Send) -> None:
        """Send the frames, several per write when they are ready together.

        Frames parsed from one upstream read are all ready at once; writing each on its own
        costs a syscall and an ASGI message per frame (about a tenth of a streamed
        request's CPU with a bursty upstream). A producer task drains the frames into a
        buffer for as long as they come without waiting; this task writes what has
        gathered whenever it runs. A frame is never held back waiting for another one.
        """
        buffer: list[bytes] = []
        wake = asyncio.Event()
        room = asyncio.Event()
        room.set()
        finished = False

        async def produce() -> None:
            nonlocal finished
            try:
                async for frame in self._frames:
                    buffer.append(frame)
                    wake.set()
                    if len(buffer) >= _MAX_BATCH:  # a slow client: stop reading upstream
                        room.clear()
                        await room.wait()
            finally:
                finished = True
                wake.set()

        producer = asyncio.ensure_future(produce())
        try:
            while True:
                if not buffer:
                    if finished:
                        break
                    wake.clear()
                    await wake.wait()
                    continue
                body = buffer[0] if len(buffer) == 1 else b"".join(buffer)
                buffer.clear()
                room.set()
                await send({"type": "http.response.body", "body": body, "more_body": True})
            producer.result()  # the frames' own error, if they ended with one
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer
            elif not producer.cancelled():
                producer.exception()  # seen (or raised above): no "never retrieved" warning
            aclose = getattr(self._frames, "aclose", None)
            if aclose is not None:
                await aclose()


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
