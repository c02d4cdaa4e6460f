"""Stopping gracefully: in-flight streams get a grace period, then end in-band.

The HTTP server (uvicorn) stops accepting connections on SIGTERM and waits for open ones,
but it cannot tell a stream that time is up: after its own timeout it cancels the request
task, and the client sees a cut connection with no reason. So the app learns of the signal
too (:func:`drain_on_signals` chains onto the server's handler), and :class:`Drain` gives
every open stream a deadline; a stream still running at it ends with an error chunk and is
settled like any other. The server's own timeout is set a little longer, as a backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from types import FrameType

from switchyard.errors import ShuttingDown

log = logging.getLogger("switchyard.shutdown")

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Drain:
    """Whether the process is stopping, and the loop time by which streams must end."""

    def __init__(self, grace_seconds: float) -> None:
        self.grace = grace_seconds
        self.deadline: float | None = None  # loop.time(), once draining
        self._listeners: set[Callable[[float], None]] = set()

    @property
    def draining(self) -> bool:
        return self.deadline is not None

    def begin(self) -> None:
        """Start the grace period (once; later calls change nothing). Runs in the loop."""
        if self.deadline is not None:
            return
        self.deadline = asyncio.get_running_loop().time() + self.grace
        log.warning(
            "shutting down: in-flight requests have %g s to finish (%d streams open)",
            self.grace,
            len(self._listeners),
        )
        for listener in list(self._listeners):
            listener(self.deadline)

    def watch(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(deadline)`` when draining begins (while it is registered)."""
        self._listeners.add(listener)

    def unwatch(self, listener: Callable[[float], None]) -> None:
        self._listeners.discard(listener)


@contextlib.contextmanager
def drain_on_signals(drain: Drain) -> Iterator[None]:
    """While the app runs, SIGTERM and SIGINT also start ``drain``.

    Only a signal handler the server installed (a Python callable) is chained onto: without
    one (the default action, or not the main thread) nobody would stop the server, and
    swallowing the signal would keep the process alive.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    installed: dict[signal.Signals, Callable[[int, FrameType | None], object]] = {}

    for sig in SIGNALS:
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(
            signum: int,
            frame: FrameType | None,
            previous: Callable[[int, FrameType | None], object] = previous,
        ) -> None:
            # A signal handler interrupts the loop between bytecodes: hand over, never touch.
            loop.call_soon_threadsafe(drain.begin)
            previous(signum, frame)

        signal.signal(sig, handler)
        installed[sig] = previous
    try:
        yield
    finally:
        for sig, previous in installed.items():
            signal.signal(sig, previous)


@contextlib.asynccontextmanager
async def within_grace(drain: Drain | None) -> AsyncIterator[None]:
    """Run the block; if a shutdown begins meanwhile, stop it when the grace period ends
    and raise :class:`ShuttingDown`, so the client gets an answer rather than a cut
    connection when the server's backstop cancels the request."""
    if drain is None:
        yield
        return
    scope = asyncio.timeout_at(drain.deadline)

    def draining(deadline: float) -> None:
        scope.reschedule(deadline)

    drain.watch(draining)
    try:
        async with scope:
            yield
    except TimeoutError:
        if scope.expired():
            raise ShuttingDown(
                "The server is shutting down and the request did not finish in time; retry it",
                retry_after=1,
            ) from None
        raise
    finally:
        drain.unwatch(draining)
