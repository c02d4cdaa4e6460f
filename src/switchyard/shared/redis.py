"""One Redis connection per process, and what to do when Redis is unavailable.

Every shared-state feature (credit reservations, rate limits, circuit breakers) asks
:meth:`SharedRedis.usable` before a round trip and reports failures with
:meth:`SharedRedis.failed`. After a failure Redis is left alone for ``retry_seconds``, and
callers use their in-process fallback: the service keeps serving, with limits enforced per
replica instead of globally. The transition is logged loudly, once, and so is the recovery.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("switchyard.shared")

# Raised by redis-py for every connection, timeout and server problem.
REDIS_ERRORS = (RedisError, OSError)


class SharedRedis:
    def __init__(
        self, url: str, *, timeout: float = 0.5, retry_seconds: float = 5.0, prefix: str = "sy"
    ) -> None:
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
        )
        self.prefix = prefix
        self._retry_seconds = retry_seconds
        self._down_until = 0.0
        self._down = False
        self._where = url.rsplit("@", 1)[-1]  # never log a password in the URL

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def usable(self) -> bool:
        return not self._down or time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self._retry_seconds
        if not self._down:
            self._down = True
            log.error(
                "Redis at %s is unavailable (%s): falling back to per-replica limits, "
                "reservations and circuit breakers until it returns",
                self._where,
                type(exc).__name__,
            )

    def succeeded(self) -> None:
        if self._down:
            self._down = False
            log.warning("Redis at %s is back: shared state restored", self._where)

    @property
    def down(self) -> bool:
        return self._down

    async def aclose(self) -> None:
        await self.client.aclose()
