"""Circuit breakers shared by replicas: one replica's verdict that an endpoint is down
reaches the others within a poll interval.

A replica whose breaker opens writes ``sy:open:<endpoint>`` with the cooldown as its
expiry. Every replica polls those keys for the catalog's endpoints (one pipelined round
trip) and opens its own breaker for whatever time is left. Each replica still counts its
own failures and probes; only the "open" verdict travels. Without Redis, breakers are
per process, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from switchyard.routing.health import HealthTracker
from switchyard.shared.redis import REDIS_ERRORS, SharedRedis

log = logging.getLogger("switchyard.routing")


class SharedBreakers:
    def __init__(
        self,
        shared: SharedRedis,
        health: HealthTracker,
        endpoint_keys: list[str],
        poll_interval: float = 0.5,
    ) -> None:
        self._shared = shared
        self._health = health
        self._keys = endpoint_keys
        self._poll_interval = poll_interval
        self._task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        health.on_open = self._opened
        health.on_close = self._closed

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._poll_forever())

    def _opened(self, endpoint: str, seconds: float) -> None:
        if not self._shared.usable():
            return
        task = asyncio.get_running_loop().create_task(self._publish(endpoint, seconds))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def _closed(self, endpoint: str) -> None:
        if not self._shared.usable():
            return
        task = asyncio.get_running_loop().create_task(self._publish(endpoint, None))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _publish(self, endpoint: str, seconds: float | None) -> None:
        """Open for ``seconds``, or (None) closed again: a probe got through."""
        key = self._shared.key("open", endpoint)
        try:
            if seconds is None:
                await self._shared.client.delete(key)
            else:
                await self._shared.client.set(key, "1", px=max(1, int(seconds * 1000)))
            self._shared.succeeded()
        except REDIS_ERRORS as exc:
            self._shared.failed(exc)

    async def poll(self) -> None:
        """Apply every breaker another replica has opened (one round trip)."""
        if not self._keys or not self._shared.usable():
            return
        try:
            async with self._shared.client.pipeline(transaction=False) as pipe:
                for endpoint in self._keys:
                    pipe.pttl(self._shared.key("open", endpoint))
                remaining = await pipe.execute()
            self._shared.succeeded()
        except REDIS_ERRORS as exc:
            self._shared.failed(exc)
            return
        now = time.monotonic()
        for endpoint, ttl in zip(self._keys, remaining, strict=True):
            if isinstance(ttl, int) and ttl > 0:
                self._health.open_breaker(endpoint, ttl / 1000, now)

    async def _poll_forever(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self._poll_interval)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
