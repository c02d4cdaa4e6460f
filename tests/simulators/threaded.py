"""A simulator on its own event loop in a daemon thread, with thread-safe calls into it.

Tests are synchronous and the server under test is another process, so each simulator runs
on a loop of its own; every simulator's handle is this class plus its protocol's controls.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, Protocol, Self, TypeVar

_T = TypeVar("_T")


class Stoppable(Protocol):
    async def stop(self) -> None: ...


S = TypeVar("S", bound=Stoppable)

TIMEOUT = 10.0


class SimulatorThread(Generic[S]):
    def __init__(self, simulator: S, start: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``start`` (the simulator's own start-up) on a new loop in a thread named
        ``name``; if it fails, the loop and thread go with it."""
        self.simulator = simulator
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        try:
            self._run(start)
        except BaseException:
            self._close_loop()
            raise

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=TIMEOUT)

    def _call(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` on the simulator's loop: its state is only touched from there."""

        async def run() -> _T:
            return fn()

        return self._run(run())

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._run(self.simulator.stop())
        self._close_loop()

    def _close_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=TIMEOUT)
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
